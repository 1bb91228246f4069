"""Use cases for organizations, users and API tokens, with their access rules.

Role checks answer 403; objects of another organization answer 404 so that their existence
does not leak.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from fedpark.hub.domain import OrgKind, Page, Principal, Role
from fedpark.hub.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from fedpark.hub.services.audit import describe
from fedpark.hub.services.tokens import hash_token, new_token
from fedpark.hub.storage import Storage
from fedpark.hub.storage.models import ApiToken, ConsoleSession, Organization, User, utcnow


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``secret`` is shown to the caller once and never stored."""

    token: ApiToken
    secret: str


class IdentityService:
    def __init__(self, storage: Storage, *, token_ttl_days: int, token_max_ttl_days: int) -> None:
        self.storage = storage
        self.token_ttl_days = token_ttl_days
        self.token_max_ttl_days = token_max_ttl_days

    # -- authentication -------------------------------------------------------------------

    def authenticate(self, secret: str) -> Principal:
        """Resolve a bearer token; 401 for an unknown, expired or revoked one."""
        with self.storage.unit_of_work(bookkeeping=True) as uow:
            token = uow.tokens.by_hash(hash_token(secret))
            if token is None:
                raise AuthenticationError("unknown API token")
            return self._principal(token, utcnow())

    @staticmethod
    def _principal(token: ApiToken, now: datetime) -> Principal:
        if token.revoked_at is not None:
            raise AuthenticationError("this API token was revoked")
        if token.expires_at <= now:
            raise AuthenticationError("this API token has expired")
        user = token.user
        if not user.active:
            raise AuthenticationError("this user is deactivated")
        # Minute resolution is enough and spares a write on every request.
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            token.last_used_at = now
        return Principal(
            user_id=user.id,
            username=user.username,
            org_id=user.org_id,
            org_kind=OrgKind(user.organization.kind),
            role=Role(user.role),
            token_id=token.id,
        )

    # -- console sessions -----------------------------------------------------------------

    def open_session(self, secret: str, ttl: timedelta) -> tuple[Principal, str]:
        """Sign a browser in with an API token: ``(principal, cookie secret)``.

        The session lives at most ``ttl`` and never longer than its token.
        """
        principal = self.authenticate(secret)
        cookie = secrets.token_urlsafe(32)
        now = utcnow()
        with self.storage.unit_of_work() as uow:
            token = uow.tokens.get(principal.token_id)
            assert token is not None
            uow.console_sessions.purge_expired(now)
            uow.console_sessions.add(
                ConsoleSession(
                    id=hash_token(cookie),
                    token_id=token.id,
                    created_at=now,
                    expires_at=min(now + ttl, token.expires_at),
                )
            )
        return principal, cookie

    def session_principal(self, cookie: str) -> Principal:
        """The caller behind a console cookie; 401 once it or its token no longer holds."""
        now = utcnow()
        with self.storage.unit_of_work(bookkeeping=True) as uow:
            row = uow.console_sessions.get(hash_token(cookie))
            if row is None or row.expires_at <= now:
                raise AuthenticationError("your console session has ended: sign in again")
            return self._principal(row.token, now)

    def close_session(self, cookie: str) -> None:
        with self.storage.unit_of_work() as uow:
            uow.console_sessions.remove(hash_token(cookie))

    # -- organizations --------------------------------------------------------------------

    def create_org(self, caller: Principal, org_id: str, name: str, kind: OrgKind) -> Organization:
        if not caller.is_park_admin:
            raise PermissionDeniedError("only the park operator's admins create organizations")
        with self.storage.unit_of_work() as uow:
            if uow.orgs.get(org_id) is not None:
                raise ConflictError(f"organization {org_id!r} already exists")
            return uow.orgs.add(Organization(id=org_id, name=name, kind=kind.value))

    def list_orgs(self, caller: Principal, page: Page) -> list[Organization]:
        # Organization names are public inside the park: contract policies name them.
        with self.storage.unit_of_work() as uow:
            return uow.orgs.list(offset=page.offset, limit=page.limit)

    def get_org(self, caller: Principal, org_id: str) -> Organization:
        with self.storage.unit_of_work() as uow:
            org = uow.orgs.get(org_id)
            if org is None:
                raise NotFoundError(f"no organization {org_id!r}")
            return org

    # -- users ----------------------------------------------------------------------------

    def create_user(
        self, caller: Principal, username: str, org_id: str, role: Role, display_name: str
    ) -> User:
        if caller.role is not Role.ADMIN:
            raise PermissionDeniedError("only admins create users")
        if not caller.administers(org_id):
            raise NotFoundError(f"no organization {org_id!r}")
        with self.storage.unit_of_work() as uow:
            org = uow.orgs.get(org_id)
            if org is None:
                raise NotFoundError(f"no organization {org_id!r}")
            if role is Role.ADMIN and org.kind != OrgKind.OPERATOR and not caller.is_park_admin:
                raise PermissionDeniedError("only park admins appoint organization admins")
            if uow.users.by_username(username) is not None:
                raise ConflictError(f"username {username!r} is taken")
            user = User(
                id=str(uuid.uuid4()),
                username=username,
                display_name=display_name,
                org_id=org_id,
                role=role.value,
            )
            return uow.users.add(user)

    def list_users(self, caller: Principal, page: Page, org_id: str | None) -> list[User]:
        if caller.role is not Role.ADMIN:
            raise PermissionDeniedError("only admins list users")
        if not caller.is_park_admin:
            if org_id is not None and org_id != caller.org_id:
                raise NotFoundError(f"no organization {org_id!r}")
            org_id = caller.org_id
        with self.storage.unit_of_work() as uow:
            return uow.users.list(offset=page.offset, limit=page.limit, org_id=org_id)

    def get_user(self, caller: Principal, user_id: str) -> User:
        with self.storage.unit_of_work() as uow:
            user = uow.users.get(user_id)
            visible = user is not None and (
                user.id == caller.user_id or caller.administers(user.org_id)
            )
            if user is None or not visible:
                raise NotFoundError(f"no user {user_id!r}")
            return user

    def deactivate_user(self, caller: Principal, user_id: str) -> User:
        if caller.role is not Role.ADMIN:
            raise PermissionDeniedError("only admins deactivate users")
        user = self.get_user(caller, user_id)
        if user.id == caller.user_id:
            raise InvalidInputError("you cannot deactivate yourself")
        with self.storage.unit_of_work() as uow:
            stored = uow.users.get(user.id)
            assert stored is not None
            stored.active = False
            uow.tokens.revoke_all_of(stored.id, utcnow())
            return stored

    # -- tokens ---------------------------------------------------------------------------

    def create_token(
        self, caller: Principal, name: str, user_id: str | None, expires_in_days: int | None
    ) -> IssuedToken:
        days = expires_in_days or self.token_ttl_days
        if days > self.token_max_ttl_days:
            raise InvalidInputError(
                f"expires_in_days may be at most {self.token_max_ttl_days}", field="expires_in_days"
            )
        target = self.get_user(caller, user_id or caller.user_id)
        if target.id != caller.user_id and caller.role is not Role.ADMIN:
            raise PermissionDeniedError("only admins create tokens for other users")
        if not target.active:
            raise ConflictError(f"user {target.username!r} is deactivated")
        token_id, secret, digest = new_token()
        describe(f"token:{token_id}")  # the audit record commits with the token
        now = utcnow()
        with self.storage.unit_of_work() as uow:
            token = uow.tokens.add(
                ApiToken(
                    id=token_id,
                    user_id=target.id,
                    name=name,
                    token_hash=digest,
                    created_at=now,
                    expires_at=now + timedelta(days=days),
                )
            )
        return IssuedToken(token, secret)

    def list_tokens(self, caller: Principal, page: Page, user_id: str | None) -> list[ApiToken]:
        with self.storage.unit_of_work() as uow:
            if user_id is not None:
                target = self.get_user(caller, user_id)
                return uow.tokens.list(offset=page.offset, limit=page.limit, user_id=target.id)
            if caller.is_park_admin:
                return uow.tokens.list(offset=page.offset, limit=page.limit)
            if caller.role is Role.ADMIN:
                return uow.tokens.list(offset=page.offset, limit=page.limit, org_id=caller.org_id)
            return uow.tokens.list(offset=page.offset, limit=page.limit, user_id=caller.user_id)

    def revoke_token(self, caller: Principal, token_id: str) -> ApiToken:
        with self.storage.unit_of_work() as uow:
            token = uow.tokens.get(token_id)
            allowed = token is not None and (
                token.user_id == caller.user_id or caller.administers(token.user.org_id)
            )
            if token is None or not allowed:
                raise NotFoundError(f"no token {token_id!r}")
            if token.revoked_at is None:
                token.revoked_at = utcnow()
            return token
