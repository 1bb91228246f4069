"""Security headers on every response (pages set their own stricter ones first)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BASE = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
}
# API answers are data for programs: nothing in them may run, be framed or be cached.
API = {
    b"content-security-policy": b"default-src 'none'; frame-ancestors 'none'",
    b"cache-control": b"no-store",
}
HSTS = {b"strict-transport-security": b"max-age=31536000"}


class SecurityHeaders:
    def __init__(self, app: ASGIApp, api_prefix: str, https: bool) -> None:
        self.app = app
        self.api_prefix = api_prefix
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = dict(BASE)
        if scope["path"].startswith(self.api_prefix):
            extra |= API
        if self.https:
            extra |= HSTS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in extra.items() if k not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
