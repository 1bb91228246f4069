"""Ed25519 signatures over canonical JSON statements, made by the hub, checked by anyone.

A signature document is self-describing JSON::

    {"format": "fedpark-signature/v1", "algorithm": "ed25519", "key_id": "…",
     "payload": {...}, "signature": "<base64 of Ed25519(canonical JSON of payload)>"}

Verification needs the hub's public key from a trusted place (downloaded once and pinned), not
the key id in the document: :func:`verify_document` checks the signature with the given key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fedpark.contracts.document import contract_sha256
from fedpark.contracts.errors import SignatureError
from fedpark.contracts.model import Contract

FORMAT = "fedpark-signature/v1"


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise SignatureError(
            "the key file is not a PEM public key (-----BEGIN PUBLIC KEY-----)"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError("the public key is not an Ed25519 key")
    return key


def sign_document(payload: dict[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    signature = private_key.sign(canonical(payload))
    return {
        "format": FORMAT,
        "algorithm": "ed25519",
        "key_id": key_id(private_key.public_key()),
        "payload": payload,
        "signature": base64.b64encode(signature).decode(),
    }


def verify_document(document: Any, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Return the payload if ``document`` is signed by ``public_key``; else SignatureError."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SignatureError(f"not a {FORMAT} document")
    if document.get("algorithm") != "ed25519":
        raise SignatureError(f"unsupported algorithm {document.get('algorithm')!r}")
    payload = document.get("payload")
    if not isinstance(payload, dict):
        raise SignatureError("the signature document has no payload")
    if document.get("key_id") != key_id(public_key):
        raise SignatureError(
            f"signed by key {document.get('key_id')!r}, not by the given key {key_id(public_key)!r}"
        )
    try:
        signature = base64.b64decode(str(document.get("signature", "")), validate=True)
        public_key.verify(signature, canonical(payload))
    except (InvalidSignature, ValueError):
        raise SignatureError("the signature does not match: the document was altered") from None
    return payload


def approval_payload(
    contract: Contract, approved_by: str, approved_by_org: str, approved_at: datetime, hub: str
) -> dict[str, Any]:
    return {
        "kind": "contract-approval",
        "contract_id": contract.id,
        "contract_version": contract.version,
        "contract_sha256": contract_sha256(contract),
        "approved_by": approved_by,
        "approved_by_org": approved_by_org,
        "approved_at": approved_at.isoformat(),
        "hub": hub,
    }


def verify_contract(
    contract: Contract, document: Any, public_key: Ed25519PublicKey
) -> dict[str, Any]:
    """Check that ``document`` is the hub's approval of exactly this contract."""
    payload = verify_document(document, public_key)
    if payload.get("kind") != "contract-approval":
        raise SignatureError("this signature is not a contract approval")
    if (payload.get("contract_id"), payload.get("contract_version")) != (
        contract.id,
        contract.version,
    ):
        raise SignatureError(
            f"the signature approves {payload.get('contract_id')} "
            f"{payload.get('contract_version')}, not {contract.id} {contract.version}"
        )
    if payload.get("contract_sha256") != contract_sha256(contract):
        raise SignatureError("the contract differs from the approved one (sha256 mismatch)")
    return payload
