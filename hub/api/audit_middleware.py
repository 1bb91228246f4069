"""Request ids, and an audit record for every state-changing request.

A request that changes the catalog gets its record in the same transaction as the change
(the catalog's write hook, :meth:`AuditService.record_with_change`): a crash cannot leave a
change without its record, nor a record of a change that was rolled back. A request that
changes nothing (refused, failed) is recorded before its answer starts; one that fails with
a 5xx after its change committed gets a second record saying so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fedpark.hub.api.problems import RETRY_AFTER_SECONDS
from fedpark.hub.errors import FedparkError
from fedpark.hub.logs import REQUEST_ID
from fedpark.hub.services.audit import CURRENT_REQUEST, AuditEntry, RequestAudit

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
        REQUEST_ID.set(request_id)  # for the log lines of this request (hub.logs)
        current = RequestAudit(entry, lambda: _route_status(scope))
        answered = False
        if method in MUTATING:
            CURRENT_REQUEST.set(current)  # this task and every thread it hands work to

        async def record(status: int) -> None:
            nonlocal answered
            if method not in MUTATING or answered:
                return
            answered = True
            if current.recorded and status < 500:
                return  # recorded with its change
            audit = scope["app"].state.runtime.audit
            await anyio.to_thread.run_sync(audit.append, entry, status)

        replaced = False

        async def send_with_id(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the app's body for an answer that was replaced
            if message["type"] == "http.response.start":
                try:
                    await record(message["status"])
                except FedparkError as exc:  # the answer cannot be recorded: not given
                    log.warning("cannot record request %s: %s", request_id, exc)
                    replaced = True
                    await _unavailable(send, request_id)
                    return
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            with contextlib.suppress(FedparkError):
                await record(500)
            raise


async def _unavailable(send: Send, request_id: str) -> None:
    body = json.dumps(
        {
            "type": "urn:fedpark:problem:unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": "the audit log cannot be written just now: retry later",
            "request_id": request_id,
        }
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _route_status(scope: Scope) -> int:
    """The status the matched route answers on success (FastAPI's ``status_code``)."""
    status = getattr(scope.get("route"), "status_code", None)
    return int(status) if status else 200
