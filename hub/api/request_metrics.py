"""Requests counted and timed by route template and status (``fedpark_http_*``)."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fedpark.hub.metrics import UNMATCHED


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/v1/experiments/{experiment_id}``), never the
    raw path: that one carries ids and whatever a client sends (unbounded label values).

    FastAPI 0.138 keeps an included router's routes with their own paths (without the
    prefixes they were included under) and puts the full path in its effective route
    context; a mount (the console's static files) is named by its prefix.
    """
    context: Any = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(context, "path", None) or getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class RequestMetrics:
    """Outermost: it sees every answer as sent, refusals of the middlewares inside included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            runtime = getattr(scope["app"].state, "runtime", None)  # None before startup
            if runtime is not None:
                elapsed = time.perf_counter() - started
                runtime.metrics.on_request(scope["method"], route_template(scope), status, elapsed)
