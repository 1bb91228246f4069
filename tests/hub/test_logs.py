"""FEDPARK_LOG_FORMAT=json: one JSON object a line, carrying the request's id."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fedpark.hub.api.audit_middleware import AuditMiddleware
from fedpark.hub.logs import JsonFormatter
from fedpark.hub.settings import Settings


def test_a_log_line_in_a_request_carries_its_id() -> None:
    log = logging.getLogger("fedpark.test.requests")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    def page(request: Request) -> PlainTextResponse:
        log.info("answering %s", "one")
        return PlainTextResponse("ok")

    app = AuditMiddleware(Starlette(routes=[Route("/page", page)]))
    try:
        with TestClient(app) as client:
            got = client.get("/page", headers={"X-Request-ID": "req-12345678"})
        log.warning("outside")
    finally:
        log.removeHandler(handler)
    assert got.headers["x-request-id"] == "req-12345678"
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    assert inside["request_id"] == "req-12345678" and inside["message"] == "answering one"
    assert (inside["level"], inside["logger"]) == ("INFO", "fedpark.test.requests")
    assert inside["time"].endswith("+00:00") and "request_id" not in outside


def test_a_traceback_stays_in_its_line() -> None:
    record = logging.LogRecord("fedpark.hub", logging.ERROR, __file__, 1, "failed", (), None)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line and "RuntimeError" in json.loads(line)["exception"]


def test_the_format_is_text_or_json() -> None:
    assert Settings(log_format="json").log_format == "json"
    with pytest.raises(ValidationError):
        Settings(log_format="xml")  # type: ignore[arg-type]
