"""Administration: organizations, users and tokens, and the audit log with the chain's
verification status. Park admins see the whole park; organization admins their own."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from fedpark.contracts.messages import describe
from fedpark.experiments.protocol.resources.identity import (
    OrganizationCreate,
    TokenCreate,
    UserCreate,
)
from fedpark.hub.api.deps import AuditDep, RuntimeDep
from fedpark.hub.console.session import ConsolePrincipal, CsrfChecked, require
from fedpark.hub.console.views import render
from fedpark.hub.domain import OrgKind, Page, Principal, Role
from fedpark.hub.errors import InvalidInputError
from fedpark.hub.runtime import HubRuntime

router = APIRouter(prefix="/admin")
M = TypeVar("M", bound=BaseModel)

TokenId = Annotated[str, Path(max_length=16, pattern=r"^[0-9a-f]{12}$")]
UserId = Annotated[str, Path(max_length=36, pattern=r"^[0-9a-f-]{36}$")]


def _validated(schema: type[M], data: dict[str, Any]) -> M:
    """The API's own body schema checks the form (422 naming the field)."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "form"
        raise InvalidInputError(f"{field}: {describe(first)}", field=field) from None


@router.get("")
def organizations(request: Request, runtime: RuntimeDep, caller: ConsolePrincipal) -> Response:
    require(caller, Role.ADMIN)
    orgs = runtime.identity.list_orgs(caller, Page(limit=500))
    return render(request, "admin_orgs.html", orgs=orgs, kinds=[k.value for k in OrgKind])


@router.post("/orgs", dependencies=[CsrfChecked])
def create_org(
    runtime: RuntimeDep,
    caller: ConsolePrincipal,
    audit: AuditDep,
    org_id: Annotated[str, Form(max_length=100)],
    name: Annotated[str, Form(max_length=300)],
    kind: Annotated[str, Form(max_length=32)],
) -> Response:
    audit.action, audit.object = "org.create", f"org:{org_id}"
    require(caller, Role.ADMIN)
    body = _validated(OrganizationCreate, {"id": org_id, "name": name, "kind": kind})
    runtime.identity.create_org(caller, body.id, body.name, body.kind)
    return RedirectResponse("/console/admin", status_code=303)


def _members(runtime: HubRuntime, caller: Principal) -> dict[str, Any]:
    members = runtime.identity.list_users(caller, Page(limit=500), None)
    orgs = (
        [o.id for o in runtime.identity.list_orgs(caller, Page(limit=500))]
        if caller.is_park_admin
        else [caller.org_id]
    )
    return {
        "users": members,
        "tokens": runtime.identity.list_tokens(caller, Page(limit=500), None),
        "names": {u.id: u.username for u in members},
        "orgs": orgs,
        "roles": [r.value for r in Role],
    }


@router.get("/users")
def users(request: Request, runtime: RuntimeDep, caller: ConsolePrincipal) -> Response:
    require(caller, Role.ADMIN)
    return render(request, "admin_users.html", issued=None, **_members(runtime, caller))


@router.post("/users", dependencies=[CsrfChecked])
def create_user(
    runtime: RuntimeDep,
    caller: ConsolePrincipal,
    audit: AuditDep,
    username: Annotated[str, Form(max_length=100)],
    org_id: Annotated[str, Form(max_length=100)],
    role: Annotated[str, Form(max_length=16)],
    display_name: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    audit.action, audit.object = "user.create", f"user:{username}"
    require(caller, Role.ADMIN)
    fields = {"username": username, "org_id": org_id, "role": role, "display_name": display_name}
    body = _validated(UserCreate, fields)
    runtime.identity.create_user(caller, body.username, body.org_id, body.role, body.display_name)
    return RedirectResponse("/console/admin/users", status_code=303)


@router.get("/users/{user_id}/deactivate")
def confirm_deactivation(
    request: Request, user_id: UserId, runtime: RuntimeDep, caller: ConsolePrincipal
) -> Response:
    """Ask first: deactivating revokes every token of the member."""
    require(caller, Role.ADMIN)
    member = runtime.identity.get_user(caller, user_id)
    return render(request, "admin_deactivate.html", user=member)


@router.post("/users/{user_id}/deactivate", dependencies=[CsrfChecked])
def deactivate_user(
    user_id: UserId, runtime: RuntimeDep, caller: ConsolePrincipal, audit: AuditDep
) -> Response:
    audit.action, audit.object = "user.deactivate", f"user:{user_id}"
    require(caller, Role.ADMIN)
    runtime.identity.deactivate_user(caller, user_id)
    return RedirectResponse("/console/admin/users", status_code=303)


@router.post("/tokens", dependencies=[CsrfChecked])
def create_token(
    request: Request,
    runtime: RuntimeDep,
    caller: ConsolePrincipal,
    audit: AuditDep,
    user_id: Annotated[str, Form(max_length=36)],
    name: Annotated[str, Form(max_length=200)],
    expires_in_days: Annotated[str, Form(max_length=6)] = "",
) -> Response:
    """Issue a token for a member: the secret is shown on this one page, never again."""
    audit.action, audit.object = "token.create", f"user:{user_id}"
    require(caller, Role.ADMIN)
    fields = {"name": name, "user_id": user_id, "expires_in_days": expires_in_days or None}
    body = _validated(TokenCreate, fields)
    issued = runtime.identity.create_token(caller, body.name, body.user_id, body.expires_in_days)
    audit.object = f"token:{issued.token.id}"
    # Rendered directly (no redirect) so that the secret never sits in a URL or history.
    return render(request, "admin_users.html", issued=issued, **_members(runtime, caller))


@router.post("/tokens/{token_id}/revoke", dependencies=[CsrfChecked])
def revoke_token(
    token_id: TokenId, runtime: RuntimeDep, caller: ConsolePrincipal, audit: AuditDep
) -> Response:
    audit.action, audit.object = "token.revoke", f"token:{token_id}"
    require(caller, Role.ADMIN)
    runtime.identity.revoke_token(caller, token_id)
    return RedirectResponse("/console/admin/users", status_code=303)


@router.get("/audit")
def audit_log(request: Request, runtime: RuntimeDep, caller: ConsolePrincipal) -> Response:
    require(caller, Role.ADMIN)
    records = runtime.audit.newest(caller, 200)
    report = runtime.audit.verify() if caller.is_park_admin else None
    return render(request, "admin_audit.html", records=records, report=report)
