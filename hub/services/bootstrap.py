"""First start: the park operator's organization, an admin and its token, and local secrets."""

from __future__ import annotations

import os
import secrets
import uuid
from datetime import timedelta
from pathlib import Path

from fedpark.hub.domain import OrgKind, Role
from fedpark.hub.services.tokens import new_token
from fedpark.hub.storage import Storage
from fedpark.hub.storage.models import ApiToken, Organization, User, utcnow

OPERATOR_ORG = "park-operator"
BOOTSTRAP_USER = "admin"
TOKEN_FILE = "bootstrap-admin-token"  # noqa: S105 - a file name


def write_secret_file(path: Path, content: str) -> None:
    """Create ``path`` readable by its owner only (0600), failing if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)


def load_or_create_key(path: Path) -> bytes:
    """A 256-bit key kept in ``path`` (hex, 0600), generated on first use."""
    if not path.exists():
        write_secret_file(path, secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


def bootstrap_admin(storage: Storage, data_dir: Path, ttl_days: int) -> str | None:
    """On an empty catalog create the operator's admin; return its token once, else None.

    The token is also written to ``data_dir/bootstrap-admin-token`` (mode 0600).
    """
    with storage.unit_of_work() as uow:
        if uow.users.count() > 0:
            return None
        if uow.orgs.get(OPERATOR_ORG) is None:
            uow.orgs.add(
                Organization(id=OPERATOR_ORG, name="Park operator", kind=OrgKind.OPERATOR.value)
            )
        user = uow.users.add(
            User(
                id=str(uuid.uuid4()),
                username=BOOTSTRAP_USER,
                display_name="Bootstrap administrator",
                org_id=OPERATOR_ORG,
                role=Role.ADMIN.value,
            )
        )
        token_id, secret, digest = new_token()
        now = utcnow()
        uow.tokens.add(
            ApiToken(
                id=token_id,
                user_id=user.id,
                name="bootstrap",
                token_hash=digest,
                created_at=now,
                expires_at=now + timedelta(days=ttl_days),
            )
        )
        token_file = data_dir / TOKEN_FILE
        token_file.unlink(missing_ok=True)  # a stale file from a wiped catalog
        write_secret_file(token_file, secret + "\n")
    return secret
