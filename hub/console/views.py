"""Rendering: the console's Jinja2 environment, page context and error pages."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from fedpark.hub.domain import Principal, Role
from fedpark.hub.lifecycle import ContractStatus, ExperimentStatus

HERE = Path(__file__).parent

# What each role finds in the navigation bar: (label, path).
NAVIGATION: dict[Role, list[tuple[str, str]]] = {
    Role.STEWARD: [
        ("Review queue", "/console/review"),
        ("Contracts", "/console/contracts"),
        ("Experiments", "/console/experiments"),
    ],
    Role.RESEARCHER: [
        ("Contracts", "/console/contracts"),
        ("Experiments", "/console/experiments"),
        ("Launch", "/console/experiments/new"),
        ("Models", "/console/models"),
    ],
    Role.PARTNER: [("Models", "/console/models"), ("Contracts", "/console/contracts")],
    Role.FACTORY: [
        ("My datasets", "/console/factory"),
        ("Contracts", "/console/contracts"),
        ("Experiments", "/console/experiments"),
    ],
    Role.ADMIN: [
        ("Organizations", "/console/admin"),
        ("Users & tokens", "/console/admin/users"),
        ("Audit log", "/console/admin/audit"),
    ],
}

# Signed-in pages are never cached (a token is shown once on one of them) and never framed;
# the policy allows only the console's own script and style sheet.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

HOME: dict[Role, str] = {role: items[0][1] for role, items in NAVIGATION.items()}


def when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def iso(value: str | None) -> str:
    """An ISO timestamp from a document (a manifest), shown like the others."""
    if not value:
        return "—"
    try:
        return when(datetime.fromisoformat(value))
    except ValueError:
        return value


def short(digest: str | None, n: int = 12) -> str:
    return digest[:n] if digest else "—"


def number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}g}"


class Views:
    """The templates, built once per app (no import-time state)."""

    def __init__(self) -> None:
        self.templates = Jinja2Templates(directory=HERE / "templates")
        env = self.templates.env
        env.filters.update(when=when, iso=iso, short=short, number=number)
        env.globals["navigation"] = NAVIGATION
        # templates compare states with the lifecycle's enums, never with copied strings
        env.globals["ContractStatus"] = ContractStatus
        env.globals["ExperimentStatus"] = ExperimentStatus

    def page(self, request: Request, name: str, http_status: int, **context: Any) -> Response:
        principal: Principal | None = getattr(request.state, "principal", None)
        context.update(
            principal=principal,
            csrf=getattr(request.state, "csrf", ""),
            path=request.url.path,
        )
        response = self.templates.TemplateResponse(request, name, context, status_code=http_status)
        response.headers.update(PAGE_HEADERS)
        return response


def views(request: Request) -> Views:
    console: Views = request.app.state.console
    return console


def render(request: Request, name: str, http_status: int = 200, **context: Any) -> Response:
    return views(request).page(request, name, http_status, **context)


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    """A console error: a redirect to sign in for 401, else a page saying what went wrong."""
    if status == 401:
        target = "/console/sign-in"
        if request.method == "GET" and request.url.path != target:
            from urllib.parse import quote

            target += "?next=" + quote(request.url.path, safe="/")
        return RedirectResponse(target, status_code=303)
    request_id = request.scope.get("state", {}).get("request_id")
    return render(request, "error.html", status, title=title, detail=detail, request_id=request_id)
