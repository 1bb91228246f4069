"""Console sign-in: the session cookie, CSRF tokens and the signed-in caller.

The cookie holds a random secret; the catalog keeps only its sha256, tied to the API token the
browser signed in with (revoking the token ends the session). Every form posts a CSRF token
derived from the session secret (HMAC), so another site can neither read nor forge it; the
sign-in form, before any session exists, uses a double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Form, Request, Response

from fedpark.hub.api.deps import AuditDep, RuntimeDep, authenticated, client_address
from fedpark.hub.domain import Principal, Role
from fedpark.hub.errors import AuthenticationError, PermissionDeniedError

SESSION_COOKIE = "fedpark_session"
SIGNIN_COOKIE = "fedpark_signin"
PATH = "/console"


def csrf_token(session_secret: str) -> str:
    return hmac.new(session_secret.encode(), b"fedpark-console-csrf", hashlib.sha256).hexdigest()


def new_signin_nonce() -> str:
    return secrets.token_urlsafe(24)


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Strict, scoped to the console; Secure whenever served over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=_https(request),
    )


def _https(request: Request) -> bool:
    base = request.app.state.runtime.settings.base_url
    return request.url.scheme == "https" or str(base).startswith("https://")


def get_session_secret(request: Request) -> str:
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret or len(secret) > 200:
        raise AuthenticationError("sign in to use the console")
    return secret


def get_console_principal(
    request: Request,
    runtime: RuntimeDep,
    audit: AuditDep,
    secret: Annotated[str, Depends(get_session_secret)],
) -> Principal:
    # A console page answers 401 with a redirect to the sign-in form.
    principal = authenticated(
        runtime, client_address(request), lambda: runtime.identity.session_principal(secret)
    )
    runtime.throttle.use_token(principal.token_id)
    audit.actor, audit.actor_org = principal.username, principal.org_id
    request.state.principal = principal
    request.state.csrf = csrf_token(secret)
    return principal


ConsolePrincipal = Annotated[Principal, Depends(get_console_principal)]


def check_csrf(
    request: Request,
    secret: Annotated[str, Depends(get_session_secret)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> None:
    """Refuse a form whose CSRF token does not match the session, or that comes from another
    origin (403)."""
    if not hmac.compare_digest(csrf, csrf_token(secret)) or not same_origin(request):
        raise PermissionDeniedError("the form expired or came from another site: reload the page")


CsrfChecked = Depends(check_csrf)


def same_origin(request: Request) -> bool:
    """Browsers send Origin on every POST; when present it must be this hub."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return (parts.scheme, parts.netloc) == (request.url.scheme, request.url.netloc)


def require(principal: Principal, *roles: Role) -> None:
    """The page's role check (the services check again, object by object)."""
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise PermissionDeniedError(f"this page is for the roles: {allowed}")
