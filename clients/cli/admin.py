"""Administration over the API: organizations, users, tokens, the audit log."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer

from fedpark.clients.cli.common import HubOpt, JsonOpt, TokenOpt, body, client, out, show
from fedpark.experiments.protocol.client import HubClient
from fedpark.experiments.protocol.resources.identity import (
    OrganizationCreate,
    OrgKind,
    Role,
    TokenCreate,
    UserCreate,
    UserPublic,
)

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
ROLES = tuple(Role)
KINDS = tuple(OrgKind)

org_app = typer.Typer(help="Organizations of the park.", no_args_is_help=True)
user_app = typer.Typer(help="Members of organizations and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log (admins).", no_args_is_help=True)

ORG_COLUMNS = ("id", "name", "kind", "created_at")
USER_COLUMNS = ("id", "username", "org_id", "role", "active", "display_name")
TOKEN_COLUMNS = ("id", "name", "user_id", "expires_at", "revoked_at", "last_used_at")


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise typer.BadParameter(f"{what} must be one of: {', '.join(allowed)}")
    return value


@org_app.command("create")
def org_create(
    org_id: Annotated[str, typer.Argument(help="Short unique name, e.g. acme-steel.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(KINDS)}.")] = "factory",
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an organization (park admins)."""
    created = body(OrganizationCreate, id=org_id, name=name, kind=_choice(kind, KINDS, "kind"))
    with client(hub, token) as api:
        show(api.create_organization(created), ORG_COLUMNS, as_json)


@org_app.command("list")
def org_list(hub: HubOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List the park's organizations."""
    with client(hub, token) as api:
        show(api.organizations(), ORG_COLUMNS, as_json)


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name, e.g. jane.doe.")],
    org: Annotated[str, typer.Option(help="The organization's id.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    display_name: Annotated[str, typer.Option(help="Full name.")] = "",
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a member to an organization (admins)."""
    created = body(
        UserCreate,
        username=username,
        org_id=org,
        role=_choice(role, ROLES, "role"),
        display_name=display_name,
    )
    with client(hub, token) as api:
        show(api.create_user(created), USER_COLUMNS, as_json)


@user_app.command("list")
def user_list(
    org: Annotated[str | None, typer.Option(help="Only this organization.")] = None,
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List members (admins: those they manage)."""
    with client(hub, token) as api:
        show(api.users(org_id=org), USER_COLUMNS, as_json)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="What the token is for, e.g. 'laptop'.")],
    user: Annotated[
        str | None, typer.Option(help="User name or id (admins); yourself if omitted.")
    ] = None,
    expires_in_days: Annotated[int | None, typer.Option(min=1, help="Lifetime in days.")] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Write the secret to this new file (mode 0600) instead of the screen.",
        ),
    ] = None,
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API token. The secret is shown once (or written once, with -o): store it now."""
    if output is not None and output.exists():
        raise typer.BadParameter(f"{output} exists; choose a new file", param_hint="--output")
    with client(hub, token) as api:
        user_id = _user_id(api, user) if user else None
        wanted = body(TokenCreate, name=name, user_id=user_id, expires_in_days=expires_in_days)
        created = api.create_token(wanted)
    if output is not None:
        _write_secret(output, created.token)
    if as_json:
        show(created, (), True)
        return
    show(created, TOKEN_COLUMNS[:4], False)
    if output is not None:
        out.print(
            f"Token written to {output} (mode 0600).", highlight=False, markup=False, soft_wrap=True
        )
        return
    out.print("Token (shown once):", style="bold")
    out.print(created.token, highlight=False, soft_wrap=True, markup=False)


def _user_id(api: HubClient, user: str) -> str:
    """A user's id from their name (or their id as given): admins think in names."""
    if _UUID.match(user):
        return user
    matches = [u.id for u in api.users() if u.username == user]
    if not matches:
        raise typer.BadParameter(
            f"no user named {user!r} among the members you manage (`fedpark user list`)",
            param_hint="--user",
        )
    return matches[0]


def _write_secret(path: Path, secret: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        raise typer.BadParameter(f"cannot create {path}", param_hint="--output") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List your tokens (admins: those of the members they manage)."""
    with client(hub, token) as api:
        show(api.tokens(user_id=user), TOKEN_COLUMNS, as_json)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (not its secret).")],
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a token at once."""
    with client(hub, token) as api:
        show(api.revoke_token(token_id), TOKEN_COLUMNS, as_json)


@audit_app.command("list")
def audit_list(
    after: Annotated[int, typer.Option(help="Only records after this sequence number.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Entries to list at most.")] = 50,
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show audit records in chain order."""
    columns = ("seq", "at", "actor", "actor_org", "action", "object", "outcome", "status_code")
    with client(hub, token) as api:
        show(api.audit(after_seq=after, limit=limit), columns, as_json)


@audit_app.command("verify")
def audit_verify(hub: HubOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Check the whole chain; exits 1 if a record was changed, removed or reordered."""
    with client(hub, token) as api:
        report = api.verify_audit()
    if as_json:
        show(report, (), True)
    elif report.ok:
        out.print(
            f"[green]audit chain intact[/green]: {report.records} records, "
            f"head {report.head_seq} {report.head_hash}"
        )
    else:
        out.print(f"[red]audit chain BROKEN[/red] ({report.records} records):")
        for problem in report.problems:
            out.print(f"  - {problem}", highlight=False, markup=False)
    if not report.ok:
        raise typer.Exit(1)


def health(
    wait: Annotated[
        float,
        typer.Option(
            min=0, help="Seconds to wait for the hub and its parts to be up (a hub starting)."
        ),
    ] = 0,
    hub: HubOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Whether the hub answers, with its storage, catalog and Flower SuperLink (no token).

    Exits 0 when all are up (a SuperLink that is off is reported, not an error), 1 when one
    is down or the hub cannot be reached.
    """
    import time

    from fedpark.experiments.protocol.errors import HubUnreachableError

    deadline = time.monotonic() + wait
    said = False
    with client(hub, None) as api:
        while True:
            try:
                state = api.health()
            except HubUnreachableError:
                if time.monotonic() >= deadline:
                    raise
            else:
                if state.status == "up" or time.monotonic() >= deadline:
                    break
            if not said:  # a hub starting takes seconds: say what the wait is for
                typer.echo(
                    f"waiting up to {wait:.0f} s for the hub at {api.base_url} ...", err=True
                )
                said = True
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    if as_json:
        show(state, (), True)
    else:
        rows = [
            {"component": name, "status": part.status, "detail": part.detail or "-"}
            for name, part in (
                ("storage", state.storage),
                ("catalog", state.catalog),
                ("Flower SuperLink", state.superlink),
            )
        ]
        show(rows, ("component", "status", "detail"), False, title=f"hub {api.base_url}")
        out.print(f"hub {state.status} (version {state.version})", highlight=False, markup=False)
    if state.status != "up":
        raise typer.Exit(1)


def whoami(hub: HubOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Show who your token belongs to."""
    with client(hub, token) as api:
        me = api.me()
    row = Caller(**me.user.model_dump(), organization=me.organization.name)
    show(row, ("username", "role", "org_id", "organization", "id"), as_json)


class Caller(UserPublic):
    """Who a token belongs to, with the organization's name."""

    organization: str


def register(app: typer.Typer) -> None:
    app.add_typer(org_app, name="org")
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
    app.add_typer(audit_app, name="audit")
    app.command("whoami")(whoami)
    app.command("health")(health)
