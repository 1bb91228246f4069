"""API token material: random, shown once, stored as a sha256."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "fpk_"  # noqa: S105 - lets secret scanners and log filters recognize FedPark tokens
RUN_TOKEN_PREFIX = "fprun_"  # noqa: S105 - a prefix, not a secret


def new_token() -> tuple[str, str, str]:
    """Return ``(token_id, token, token_hash)`` for a fresh 256-bit token."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secrets.token_hex(6), token, hash_token(token)


def new_run_token() -> str:
    """A fresh 256-bit token for one Flower run's ServerApp (only its hash is stored)."""
    return RUN_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
