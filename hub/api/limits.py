"""Bound what a request may cost before it is parsed.

``BodySizeLimit`` refuses bodies above a size limit with 413 before they are read into memory.
``JsonShapeLimit`` refuses, before any JSON is parsed, bodies whose *shape* would cost far more
than their bytes (2.6 million tiny objects in 8 MiB take gigabytes once parsed and validated),
and text the catalog cannot store (NUL, lone surrogates), with 422.
"""

from __future__ import annotations

import json
import re

import numpy as np
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_DEPTH = 32
MAX_JSON_CONTAINERS = 100_000  # objects and arrays in one body
# Values (numbers, strings, literals, object members) in one body. Under the 8 MiB byte
# limit a body can hold ~4 million tiny values (2 million floats parse to 70 MiB in ~1 s);
# the largest documents FedPark takes stay well below the cap: a contract (at most 200 000
# allowed values in all, contracts/model.py), a profile (2000 columns x 200 categories), a
# round report (1000 factories x 64 metrics, twice). A million floats parse in ~35 MiB.
MAX_JSON_VALUES = 1_000_000
_NUL = re.compile(rb"\\u0000|\x00")
_HIGH = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}")
_LOW = re.compile(rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_QUERY_NUL = re.compile(rb"%00|\x00")


class BodyTooLargeError(Exception):
    pass


class BodySizeLimit:
    def __init__(
        self, app: ASGIApp, max_bytes: int, overrides: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = overrides or {}  # path prefix -> limit (artifact uploads)

    def _limit(self, path: str, content_type: bytes) -> int:
        """The path's limit; a JSON body always has the general one: an override is for
        the artifacts (weights) uploaded under its prefix, never for a document to parse."""
        if not content_type.startswith(b"application/json"):
            for prefix, limit in self.overrides.items():
                if path.startswith(prefix):
                    return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        limit = self._limit(scope.get("path", ""), headers.get(b"content-type", b"").lower())
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # chunked uploads without a Content-Length
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        await _problem(
            scope,
            send,
            413,
            "too-large",
            "Request body too large",
            f"the request body exceeds {limit} bytes",
        )


def json_shape_problem(body: bytes) -> str | None:
    """Why ``body`` may not be parsed, or None. Linear in its size, no parsing, and a few
    times the body's size in memory at most, whatever its shape (no per-token objects)."""
    escapes = body.replace(b"\\\\", b"__")  # an escaped backslash starts no escape
    if _NUL.search(escapes):
        return "text may not contain NUL characters (U+0000)"
    if _lone_surrogate(escapes):
        return "text may not contain lone UTF-16 surrogates (\\ud800-\\udfff)"
    skeleton = _outside_strings(np.frombuffer(escapes, dtype=np.uint8))
    opens = (skeleton == ord("{")) | (skeleton == ord("["))
    containers = int(np.count_nonzero(opens))
    if containers > MAX_JSON_CONTAINERS:
        return f"the body holds more than {MAX_JSON_CONTAINERS} JSON objects and arrays"
    marks = skeleton[opens | (skeleton == ord("}")) | (skeleton == ord("]"))]
    steps = np.where((marks == ord("{")) | (marks == ord("[")), 1, -1)
    if containers and int(np.cumsum(steps).max()) > MAX_JSON_DEPTH:
        return f"the body nests more than {MAX_JSON_DEPTH} levels deep"
    # each comma separates two values; each container holds at least one before its first
    if int(np.count_nonzero(skeleton == ord(","))) + containers > MAX_JSON_VALUES:
        return f"the body holds more than {MAX_JSON_VALUES} JSON values"
    return None


def _outside_strings(raw: np.ndarray) -> np.ndarray:
    """The bytes of ``raw`` (escaped backslashes already blanked) outside string literals.

    A quote not preceded by a backslash opens or closes a string; a running XOR of those
    quotes is 1 inside one. Arrays of one byte per input byte: a regular expression over
    two million strings would build two million objects (over 300 MiB for 7 MiB).
    """
    quotes = raw == ord('"')
    np.logical_and(quotes[1:], raw[:-1] != ord("\\"), out=quotes[1:])
    inside = np.bitwise_xor.accumulate(quotes.view(np.uint8))
    inside |= quotes.view(np.uint8)  # the closing quote too
    np.equal(inside, 0, out=quotes)
    del inside
    outside: np.ndarray = raw[quotes]
    return outside


def _lone_surrogate(body: bytes) -> bool:
    """A high surrogate escape not followed by a low one, or a low one not after a high."""
    for high in _HIGH.finditer(body):
        if not _LOW.match(body, high.end()):
            return True
    for low in _LOW.finditer(body):
        if low.start() < 6 or not _HIGH.match(body, low.start() - 6):
            return True
    return False


class JsonShapeLimit:
    """Check JSON request bodies (and query strings) before the application parses them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _QUERY_NUL.search(scope.get("query_string", b"")) or _QUERY_NUL.search(
            scope.get("raw_path") or b""
        ):
            await _problem(
                scope,
                send,
                422,
                "invalid-input",
                "Invalid input",
                "the URL may not contain NUL characters (%00)",
            )
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        form = content_type.startswith(b"application/x-www-form-urlencoded")
        if not (form or content_type.startswith(b"application/json")):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:  # bounded: BodySizeLimit (outside this) caps the body
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if form:  # the console's forms
            problem = (
                "text may not contain NUL characters (%00)" if _QUERY_NUL.search(body) else None
            )
        else:
            problem = json_shape_problem(body)
        if problem is not None:
            await _problem(scope, send, 422, "invalid-input", "Invalid input", problem)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _problem(
    scope: Scope, send: Send, status: int, code: str, title: str, detail: str
) -> None:
    body = json.dumps(
        {
            "type": f"urn:fedpark:problem:{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope.get("path", ""),
            "request_id": scope.get("state", {}).get("request_id"),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
