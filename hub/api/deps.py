"""Annotated dependencies shared by the routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fedpark.hub.domain import Page, Principal, Role
from fedpark.hub.errors import AuthenticationError, PermissionDeniedError
from fedpark.hub.runtime import HubRuntime
from fedpark.hub.services.audit import AuditEntry

T = TypeVar("T")
_bearer = HTTPBearer(auto_error=False, description="An API token: `fedpark token create`")


def get_runtime(request: Request) -> HubRuntime:
    runtime: HubRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[HubRuntime, Depends(get_runtime)]


def get_audit_entry(request: Request) -> AuditEntry:
    """The audit record of this request; routes name the action and the object."""
    entry: AuditEntry = request.scope["state"]["audit"]
    return entry


AuditDep = Annotated[AuditEntry, Depends(get_audit_entry)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def authenticated(runtime: HubRuntime, address: str, check: Callable[[], T]) -> T:
    """Run an authentication ``check`` under the failed-attempts limit of ``address``."""
    runtime.throttle.check_address(address)
    try:
        return check()
    except AuthenticationError:
        runtime.throttle.failed(address)
        raise


def get_principal(
    request: Request,
    runtime: RuntimeDep,
    audit: AuditDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise AuthenticationError("send an API token as `Authorization: Bearer <token>`")
    secret = credentials.credentials
    principal = authenticated(
        runtime, client_address(request), lambda: runtime.identity.authenticate(secret)
    )
    audit.actor, audit.actor_org = principal.username, principal.org_id
    runtime.throttle.use_token(principal.token_id)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_role(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only the given roles through (403 otherwise)."""
    allowed = ", ".join(r.value for r in roles)

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise PermissionDeniedError(f"this needs one of the roles: {allowed}")
        return principal

    return check


AdminPrincipal = Annotated[Principal, Depends(require_role(Role.ADMIN))]


def get_page(
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page:
    return Page(offset=offset, limit=limit)


PageDep = Annotated[Page, Depends(get_page)]
