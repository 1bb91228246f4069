"""The park's CA, its server certificates, and the node keys the hub accepts."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from fedpark.hub.errors import ConfigurationError, InvalidInputError
from fedpark.hub.flower.pki import init_ca, issue
from fedpark.hub.services.federation import node_key_pem


def test_ca_issues_server_certificates_it_verifies(tmp_path: Path) -> None:
    ca_path = init_ca(tmp_path)
    assert (tmp_path / "ca.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ConfigurationError, match="already holds a CA"):
        init_ca(tmp_path)  # never replaced: every issued certificate hangs on it
    cert_path, key_path = issue(tmp_path, "superlink", ["127.0.0.1", "link.park.example"])
    assert key_path.stat().st_mode & 0o777 == 0o600
    chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    assert chain[1] == ca and chain[0].issuer == ca.subject
    chain[0].verify_directly_issued_by(ca)
    names = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["link.park.example"]
    with pytest.raises(ConfigurationError, match="--host"):
        issue(tmp_path, "gate", [])
    with pytest.raises(ConfigurationError, match="no usable CA"):
        issue(tmp_path / "elsewhere", "gate", ["127.0.0.1"])


def _openssh(key: object) -> str:
    public = key.public_key()  # type: ignore[attr-defined]
    return str(
        public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ).decode()
    )


def test_node_keys_must_be_ec_on_a_nist_curve() -> None:
    pem = node_key_pem(_openssh(ec.generate_private_key(ec.SECP384R1())))
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert node_key_pem(pem.decode()) == pem  # PEM is accepted as well
    for wrong in (
        _openssh(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        _openssh(ed25519.Ed25519PrivateKey.generate()),
        ec.generate_private_key(ec.SECP256K1())  # not a NIST curve (PEM: OpenSSH has none)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    ):
        with pytest.raises(InvalidInputError, match="P-256, P-384 or P-521"):
            node_key_pem(wrong)
    with pytest.raises(InvalidInputError, match="not a public key"):
        node_key_pem("ecdsa-sha2-nistp384 AAAAgarbage")
