"""Errors as RFC 9457 problem details, mapped in this one place."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from fedpark.hub.console.views import error_page
from fedpark.hub.errors import DomainError, FedparkError, TooManyRequestsError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def _console(request: Request) -> bool:
    path = request.url.path
    return path == "/console" or path.startswith("/console/")


def problem(
    request: Request,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    if _console(request):  # people, not programs: a page (or the sign-in form for 401)
        return error_page(request, status, title, detail)
    body: dict[str, Any] = {
        "type": f"urn:fedpark:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if isinstance(exc, TooManyRequestsError):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    extra = {"field": exc.field} if exc.field else {}
    return problem(request, exc.status, exc.code, exc.title, exc.message, headers, **extra)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _location(e["loc"]), "message": e["msg"]} for e in exc.errors()]
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    detail = f"{first['field']}: {first['message']}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more)"
    return problem(
        request, 422, "invalid-input", "Invalid input", detail, field=first["field"], errors=errors
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}
    title = titles.get(exc.status_code, "Error")
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem(
        request,
        exc.status_code,
        title.lower().replace(" ", "-"),
        title,
        detail,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    if isinstance(exc, FedparkError):  # storage or catalog trouble: the service is degraded
        log.error("request failed: %s", exc)
        return problem(request, 503, "unavailable", "Service unavailable", str(exc))
    log.exception("unexpected error")
    return problem(
        request,
        500,
        "internal",
        "Internal server error",
        "the hub failed to handle this request; the operator can find it by its request id",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(FedparkError, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
