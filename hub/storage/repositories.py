"""Queries over the catalog tables; services use these and never build SQL themselves."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fedpark.hub.storage.models import ApiToken, AuditHead, AuditRecord, Organization, User


class OrganizationRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, org_id: str) -> Organization | None:
        return self.session.get(Organization, org_id)

    def add(self, org: Organization) -> Organization:
        self.session.add(org)
        self.session.flush()
        return org

    def list(
        self, *, offset: int, limit: int, ids: Sequence[str] | None = None
    ) -> list[Organization]:
        query = select(Organization).order_by(Organization.id).offset(offset).limit(limit)
        if ids is not None:
            query = query.where(Organization.id.in_(ids))
        return list(self.session.scalars(query))


class UserRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, user_id: str) -> User | None:
        return self.session.get(User, user_id)

    def by_username(self, username: str) -> User | None:
        return self.session.scalar(select(User).where(User.username == username))

    def add(self, user: User) -> User:
        self.session.add(user)
        self.session.flush()
        return user

    def count(self) -> int:
        return self.session.scalar(select(func.count()).select_from(User)) or 0

    def list(self, *, offset: int, limit: int, org_id: str | None = None) -> list[User]:
        query = select(User).order_by(User.username).offset(offset).limit(limit)
        if org_id is not None:
            query = query.where(User.org_id == org_id)
        return list(self.session.scalars(query))


class TokenRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, token_id: str) -> ApiToken | None:
        return self.session.get(ApiToken, token_id)

    def by_hash(self, token_hash: str) -> ApiToken | None:
        return self.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))

    def add(self, token: ApiToken) -> ApiToken:
        self.session.add(token)
        self.session.flush()
        return token

    def list(
        self, *, offset: int, limit: int, user_id: str | None = None, org_id: str | None = None
    ) -> list[ApiToken]:
        query = select(ApiToken).join(User).order_by(ApiToken.created_at, ApiToken.id)
        if user_id is not None:
            query = query.where(ApiToken.user_id == user_id)
        if org_id is not None:
            query = query.where(User.org_id == org_id)
        return list(self.session.scalars(query.offset(offset).limit(limit)))

    def revoke_all_of(self, user_id: str, at: datetime) -> None:
        for token in self.session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)):
            token.revoked_at = token.revoked_at or at


class AuditRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def head(self) -> AuditHead | None:
        return self.session.get(AuditHead, 1)

    def append(self, record: AuditRecord) -> None:
        """Add a record and move the head; a concurrent append fails on the primary key."""
        self.session.add(record)
        head = self.head()
        if head is None:
            self.session.add(AuditHead(id=1, seq=record.seq, hash=record.hash))
        else:
            head.seq, head.hash = record.seq, record.hash
        self.session.flush()

    def list(
        self, *, after_seq: int = 0, limit: int, org_id: str | None = None
    ) -> list[AuditRecord]:
        query = select(AuditRecord).where(AuditRecord.seq > after_seq)
        if org_id is not None:
            query = query.where(AuditRecord.actor_org == org_id)
        return list(self.session.scalars(query.order_by(AuditRecord.seq).limit(limit)))

    def iter_all(self, batch: int = 1000) -> Iterator[AuditRecord]:
        """Every record in chain order, fetched ``batch`` at a time (bounded memory)."""
        query = select(AuditRecord).order_by(AuditRecord.seq).execution_options(yield_per=batch)
        yield from self.session.scalars(query)
