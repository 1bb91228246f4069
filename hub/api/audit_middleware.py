"""Request ids, and exactly one audit record for every state-changing request.

The record is written before the response starts, so a client that got an answer can rely on
the record being there; a request that fails with an exception is recorded as an error.
"""

from __future__ import annotations

import logging
import re
import uuid

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fedpark.hub.services.audit import AuditEntry

log = logging.getLogger(__name__)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        method = scope["method"]
        entry = AuditEntry(request_id=request_id, action=f"{method} {scope['path']}"[:120])
        state = scope.setdefault("state", {})
        state["request_id"], state["audit"] = request_id, entry
        recorded = False

        async def record(status: int) -> None:
            nonlocal recorded
            if method not in MUTATING or recorded:
                return
            recorded = True
            audit = scope["app"].state.runtime.audit
            await anyio.to_thread.run_sync(audit.append, entry, status)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                await record(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            await record(500)
            raise
