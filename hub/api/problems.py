"""Errors as RFC 9457 problem details, mapped in this one place."""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from fedpark.contracts.errors import (
    ContractError,
    ContractFormatError,
    ContractInvalidError,
    SignatureError,
)
from fedpark.contracts.messages import describe
from fedpark.hub.errors import (
    DomainError,
    FedparkError,
    IntegrityError,
    ObjectNotFoundError,
    TooManyRequestsError,
    unavailable_message,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5  # storage or catalog outages: most are restarts
_DETAILED = 10  # problems of a request spelt out in its detail
_FIELD_LIKE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")


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
    page = getattr(request.app.state, "error_page", None)  # set by the console's install
    if page is not None and _console(request):  # people, not programs: a page (or sign-in)
        rendered: Response = page(request, status, title, detail)
        return rendered
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


def _location(error: Any, names: frozenset[str]) -> str:
    """Where the error is, as a path of field names. A dict's key becomes ``*``: it may be a
    value (a category name in a factory's profile). An unknown field of a model is named if
    it looks like a field name: a typo is worth showing."""
    loc = [p for p in error["loc"] if p not in ("body", "query", "path", "header")]
    parts = [str(p) if isinstance(p, int) or p in names else "*" for p in loc]
    if error.get("type") == "extra_forbidden" and loc and _FIELD_LIKE.match(str(loc[-1])):
        parts[-1] = str(loc[-1])
    return ".".join(parts) or "body"


def _message(error: Any) -> str:
    """What is wrong in FedPark's words (by the error's kind: never pydantic's text, which
    spells patterns as regular expressions), and a custom validator's message unless it
    quotes the input: answers never echo what was sent, which may be a factory's report."""
    message = describe(error, echo=False)
    value = error.get("input")
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value)
        if len(text) >= 4 and text in message:
            return f"invalid value ({error.get('type', 'value_error')})"
    return message


def _field_names(app: Any) -> frozenset[str]:
    """Every field name in the API's schemas (computed once per app)."""
    names: frozenset[str] | None = getattr(app.state, "problem_field_names", None)
    if names is None:
        spec = app.openapi()
        schemas = spec.get("components", {}).get("schemas", {})
        found = {name for schema in schemas.values() for name in schema.get("properties", {})}
        found |= {
            parameter["name"]
            for path in spec.get("paths", {}).values()
            for operation in path.values()
            if isinstance(operation, dict)
            for parameter in operation.get("parameters", [])
        }
        names = frozenset(found)
        app.state.problem_field_names = names
    return names


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if isinstance(exc, TooManyRequestsError):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    extra = {"field": exc.field} if exc.field else {}
    return problem(request, exc.status, exc.code, exc.title, exc.message, headers, **extra)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    names = _field_names(request.app)
    errors = [{"field": _location(e, names), "message": _message(e)} for e in exc.errors()]
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    # Every problem in the detail (a client may show nothing else), up to a bound.
    shown = errors[:_DETAILED] or [first]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in shown)
    if len(errors) > _DETAILED:
        detail += f"; and {len(errors) - _DETAILED} more (see errors)"
    return problem(
        request, 422, "invalid-input", "Invalid input", detail, field=first["field"], errors=errors
    )


async def _contract_error(request: Request, exc: Exception) -> Response:
    """A contract document, signature or data set the contracts package refused, in fixed
    words and the field it names: a field's message comes from pydantic and may quote the
    value (the same rule as for request bodies above)."""
    assert isinstance(exc, ContractError)
    if isinstance(exc, ContractInvalidError) and exc.problems:
        field = exc.problems[0].field
        detail = f"the contract document is invalid at {field}"
        return problem(request, 422, "invalid-input", "Invalid input", detail, field=field)
    detail = {
        SignatureError: "the signature does not verify",
        ContractFormatError: "the contract document cannot be read",
    }.get(type(exc), "the contract request cannot be used")
    return problem(request, 422, "invalid-input", "Invalid input", detail)


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
    if isinstance(exc, IntegrityError | ObjectNotFoundError):  # not transient: alert
        log.critical(
            "ALERT stored data missing or damaged (%s %s): %s",
            request.method,
            request.url.path,
            exc,
        )
        return problem(
            request,
            500,
            "stored-data-damaged",
            "Stored data is missing or damaged",
            "the hub's stored copy of what this request needs failed its integrity check "
            "(missing, or not the bytes recorded); waiting will not help: the park operator "
            "has been alerted and can find it by the request id",
        )
    if isinstance(exc, FedparkError):  # storage, catalog or Flower unreachable: it passes
        log.error("request failed: %s", exc)
        return problem(
            request,
            503,
            "unavailable",
            "Service unavailable",
            unavailable_message(exc),
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
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
    app.add_exception_handler(ContractError, _contract_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(FedparkError, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
