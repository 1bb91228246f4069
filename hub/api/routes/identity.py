"""Organizations, users, tokens and the caller's own identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from fedpark.experiments.protocol.resources.identity import (
    MePublic,
    OrganizationCreate,
    OrganizationPublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserCreate,
    UserPublic,
)
from fedpark.hub.api.deps import (
    AdminPrincipal,
    AuditDep,
    CurrentPrincipal,
    PageDep,
    RuntimeDep,
)

router = APIRouter()


@router.get("/me", response_model=MePublic, tags=["identity"])
def me(runtime: RuntimeDep, caller: CurrentPrincipal) -> MePublic:
    """Who the token belongs to."""
    user = runtime.identity.get_user(caller, caller.user_id)
    org = runtime.identity.get_org(caller, caller.org_id)
    return MePublic(
        user=UserPublic.model_validate(user), organization=OrganizationPublic.model_validate(org)
    )


@router.post(
    "/organizations",
    response_model=OrganizationPublic,
    status_code=status.HTTP_201_CREATED,
    tags=["organizations"],
)
def create_organization(
    body: OrganizationCreate, runtime: RuntimeDep, caller: AdminPrincipal, audit: AuditDep
) -> OrganizationPublic:
    """Register an organization (park admins)."""
    audit.action, audit.object = "organization.create", f"organization:{body.id}"
    org = runtime.identity.create_org(caller, body.id, body.name, body.kind)
    return OrganizationPublic.model_validate(org)


@router.get("/organizations", response_model=list[OrganizationPublic], tags=["organizations"])
def list_organizations(
    runtime: RuntimeDep, caller: CurrentPrincipal, page: PageDep
) -> list[OrganizationPublic]:
    """All organizations of the park (their names are public inside the park)."""
    orgs = runtime.identity.list_orgs(caller, page)
    return [OrganizationPublic.model_validate(o) for o in orgs]


@router.get("/organizations/{org_id}", response_model=OrganizationPublic, tags=["organizations"])
def get_organization(
    org_id: str, runtime: RuntimeDep, caller: CurrentPrincipal
) -> OrganizationPublic:
    return OrganizationPublic.model_validate(runtime.identity.get_org(caller, org_id))


@router.post(
    "/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED, tags=["users"]
)
def create_user(
    body: UserCreate, runtime: RuntimeDep, caller: AdminPrincipal, audit: AuditDep
) -> UserPublic:
    """Add a member to an organization (park admins, or that organization's admins)."""
    audit.action, audit.object = "user.create", f"user:{body.username}@{body.org_id}"
    user = runtime.identity.create_user(
        caller, body.username, body.org_id, body.role, body.display_name
    )
    return UserPublic.model_validate(user)


@router.get("/users", response_model=list[UserPublic], tags=["users"])
def list_users(
    runtime: RuntimeDep,
    caller: AdminPrincipal,
    page: PageDep,
    org_id: Annotated[str | None, Query(max_length=63)] = None,
) -> list[UserPublic]:
    users = runtime.identity.list_users(caller, page, org_id)
    return [UserPublic.model_validate(u) for u in users]


@router.get("/users/{user_id}", response_model=UserPublic, tags=["users"])
def get_user(user_id: str, runtime: RuntimeDep, caller: CurrentPrincipal) -> UserPublic:
    return UserPublic.model_validate(runtime.identity.get_user(caller, user_id))


@router.delete("/users/{user_id}", response_model=UserPublic, tags=["users"])
def deactivate_user(
    user_id: str, runtime: RuntimeDep, caller: AdminPrincipal, audit: AuditDep
) -> UserPublic:
    """Deactivate a user and revoke all their tokens (the record is kept for the audit)."""
    audit.action, audit.object = "user.deactivate", f"user:{user_id}"
    return UserPublic.model_validate(runtime.identity.deactivate_user(caller, user_id))


@router.post(
    "/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED, tags=["tokens"]
)
def create_token(
    body: TokenCreate, runtime: RuntimeDep, caller: CurrentPrincipal, audit: AuditDep
) -> TokenCreated:
    """Issue an API token for yourself (or, as an admin, for a member you manage).

    The secret is in this answer only; the hub keeps its hash.
    """
    audit.action, audit.object = "token.create", f"user:{body.user_id or caller.user_id}"
    issued = runtime.identity.create_token(caller, body.name, body.user_id, body.expires_in_days)
    audit.object = f"token:{issued.token.id}"
    public = TokenPublic.model_validate(issued.token)
    return TokenCreated(**public.model_dump(), token=issued.secret)


@router.get("/tokens", response_model=list[TokenPublic], tags=["tokens"])
def list_tokens(
    runtime: RuntimeDep,
    caller: CurrentPrincipal,
    page: PageDep,
    user_id: Annotated[str | None, Query(max_length=36)] = None,
) -> list[TokenPublic]:
    """Your tokens; admins see those of the members they manage."""
    tokens = runtime.identity.list_tokens(caller, page, user_id)
    return [TokenPublic.model_validate(t) for t in tokens]


@router.delete("/tokens/{token_id}", response_model=TokenPublic, tags=["tokens"])
def revoke_token(
    token_id: str, runtime: RuntimeDep, caller: CurrentPrincipal, audit: AuditDep
) -> TokenPublic:
    """Revoke a token at once; requests with it get 401 from now on."""
    audit.action, audit.object = "token.revoke", f"token:{token_id}"
    return TokenPublic.model_validate(runtime.identity.revoke_token(caller, token_id))
