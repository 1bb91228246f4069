"""The Fleet gate: the only door factories get to the Flower SuperLink.

Flower 1.41's SuperLink serves its Control API (start, stop and register things; no
credentials) on the same port as the Fleet API its SuperNodes use. The gate listens where
factories connect and forwards only ``/v1/fleet/...``; every other path is refused with 403
before anything reaches the SuperLink, which then listens on a private address that only the
hub (Control) and the gate (Fleet) can reach.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FLEET_PREFIX = "/v1/fleet/"
# Per-connection headers are the gate's own business, not the SuperLink's.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}
    | {"proxy-authorization", "proxy-authenticate", "content-length"}
)


def _refuse(path: str) -> JSONResponse:
    return JSONResponse(
        {
            "type": "urn:fedpark:problem:forbidden",
            "title": "Forbidden",
            "status": 403,
            "detail": f"{path} is not reachable from outside the park: this gate serves only "
            "Flower's Fleet API",
        },
        status_code=403,
        media_type="application/problem+json",
    )


def build_gate(superlink: str, ca_file: Path | None = None, timeout: float = 300.0) -> Starlette:
    """An ASGI app forwarding the Fleet API to ``superlink`` (``https://host:port`` when a CA
    is given, else ``http://``) and refusing everything else."""
    scheme = "https" if ca_file else "http"
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            base_url=f"{scheme}://{superlink}", verify=verify, timeout=timeout
        ) as client:
            app.state.upstream = client
            yield

    async def forward(request: Request) -> Response:
        path = request.url.path
        # Normalized paths only: no "/v1/fleet/../control/stop-run" slipping through.
        if not path.startswith(FLEET_PREFIX) or "/.." in path or "//" in path:
            return _refuse(path)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream: httpx.AsyncClient = request.app.state.upstream
        try:
            answer = await upstream.request(
                request.method,
                path,
                params=request.query_params,
                headers=headers,
                content=await request.body(),
            )
        except httpx.TransportError:
            return JSONResponse(
                {"title": "Bad gateway", "status": 502, "detail": "the SuperLink is unreachable"},
                status_code=502,
            )
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
        kept.pop("content-encoding", None)  # httpx hands over decoded bytes
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(
        routes=[Route("/{path:path}", forward, methods=methods)],
        lifespan=lifespan,
    )
