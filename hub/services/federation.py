"""Factories' SuperNodes: registering their keys with the SuperLink (node authentication)."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fedpark.hub.domain import Principal, Role
from fedpark.hub.errors import (
    FlowerUnavailableError,
    InvalidInputError,
    PermissionDeniedError,
)
from fedpark.hub.flower.control import FlowerControl

NIST_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


def node_key_pem(text: str) -> bytes:
    """A SuperNode public key (OpenSSH or PEM) as the PEM Flower registers; 422 unless it is
    an EC key on a NIST curve (Flower accepts no other)."""
    raw = text.strip().encode()
    try:
        key = (
            serialization.load_pem_public_key(raw)
            if raw.startswith(b"-----BEGIN")
            else serialization.load_ssh_public_key(raw)
        )
    except (ValueError, TypeError):
        raise InvalidInputError(
            "not a public key: give the SuperNode's EC public key, OpenSSH or PEM",
            field="public_key",
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, NIST_CURVES):
        raise InvalidInputError("use an EC key on P-256, P-384 or P-521", field="public_key")
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class FederationService:
    def __init__(self, flower: FlowerControl | None) -> None:
        self.flower = flower

    def register_node(self, caller: Principal, public_key: str) -> int:
        """Let a factory's SuperNode key into the SuperLink; 409 if it is already in."""
        if caller.role is not Role.FACTORY:
            raise PermissionDeniedError("only factories register SuperNodes")
        pem = node_key_pem(public_key)
        if self.flower is None:
            raise FlowerUnavailableError.not_configured()
        return self.flower.register_node(pem, name=caller.org_id)
