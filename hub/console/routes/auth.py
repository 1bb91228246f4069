"""Signing in and out, and the landing page that sends each role to its own pages."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from fedpark.hub.api.deps import AuditDep, RuntimeDep, authenticated, client_address
from fedpark.hub.console.session import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    ConsolePrincipal,
    CsrfChecked,
    get_session_secret,
    new_signin_nonce,
    same_origin,
    set_cookie,
)
from fedpark.hub.console.views import HOME, render
from fedpark.hub.errors import AuthenticationError

router = APIRouter()
SIGNIN_SECONDS = 600


def _safe_next(target: str | None) -> str | None:
    """Only a console path of this hub: never an open redirect."""
    if target and target.startswith("/console/") and "//" not in target and "\\" not in target:
        return target
    return None


@router.get("")
def landing(caller: ConsolePrincipal) -> Response:
    return RedirectResponse(HOME[caller.role], status_code=303)


@router.get("/sign-in")
def sign_in_form(request: Request, next: str | None = None) -> Response:
    nonce = new_signin_nonce()
    response = render(request, "sign_in.html", nonce=nonce, next=_safe_next(next), error=None)
    set_cookie(response, request, SIGNIN_COOKIE, nonce, SIGNIN_SECONDS)
    return response


@router.post("/sign-in")
def sign_in(
    request: Request,
    runtime: RuntimeDep,
    audit: AuditDep,
    token: Annotated[str, Form(max_length=200)] = "",
    nonce: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str | None, Form(max_length=500)] = None,
) -> Response:
    """Exchange an API token for a session cookie (the token itself is never stored)."""
    audit.action, audit.object = "console.sign_in", "console"
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    error = None
    if not expected or not hmac.compare_digest(nonce, expected) or not same_origin(request):
        error = "The sign-in form expired. Please try again."
    elif not token.strip():
        error = "Paste your API token (it starts with fpk_)."
    if error is None:
        ttl = timedelta(hours=runtime.settings.console_session_hours)
        try:
            principal, secret = authenticated(
                runtime,
                client_address(request),
                lambda: runtime.identity.open_session(token.strip(), ttl),
            )
        except AuthenticationError as exc:
            error = f"Sign-in refused: {exc.message}."
    if error is not None:
        fresh = new_signin_nonce()
        response = render(
            request, "sign_in.html", 401, nonce=fresh, next=_safe_next(next), error=error
        )
        set_cookie(response, request, SIGNIN_COOKIE, fresh, SIGNIN_SECONDS)
        return response
    audit.actor, audit.actor_org = principal.username, principal.org_id
    response = RedirectResponse(_safe_next(next) or HOME[principal.role], status_code=303)
    set_cookie(response, request, SESSION_COOKIE, secret, int(ttl.total_seconds()))
    response.delete_cookie(SIGNIN_COOKIE, path="/console")
    return response


@router.post("/sign-out", dependencies=[CsrfChecked])
def sign_out(
    request: Request, runtime: RuntimeDep, caller: ConsolePrincipal, audit: AuditDep
) -> Response:
    audit.action, audit.object = "console.sign_out", "console"
    runtime.identity.close_session(get_session_secret(request))
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response
