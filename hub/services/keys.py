"""The hub's Ed25519 signing key: contract approvals (and later model manifests)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedpark.contracts.signing import key_id, public_key_pem
from fedpark.hub.errors import ConfigurationError
from fedpark.hub.services.bootstrap import write_secret_file


class HubKey:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self.private_key = private_key
        self.public_pem = public_key_pem(private_key.public_key())
        self.key_id = key_id(private_key.public_key())

    @classmethod
    def load_or_create(cls, path: Path) -> HubKey:
        """Read the PEM private key at ``path``, generating it (mode 0600) on first use."""
        if not path.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            write_secret_file(path, pem.decode())
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"cannot load the hub's signing key {path}: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError(f"the hub's signing key {path} is not an Ed25519 key")
        return cls(key)
