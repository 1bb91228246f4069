"""``GET /metrics``: the hub's Prometheus metrics, for the park operator's admins."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from fedpark.hub.api.deps import AdminPrincipal, RuntimeDep
from fedpark.hub.errors import PermissionDeniedError

router = APIRouter(tags=["metrics"])


# Not in the OpenAPI document: it is Prometheus' text format, not the JSON API.
@router.get("/metrics", include_in_schema=False)
async def metrics(runtime: RuntimeDep, caller: AdminPrincipal) -> Response:
    """Every metric in Prometheus' text format. The whole park's figures (every
    organization's experiments, every contract's refusals): park admins only. A Prometheus
    that cannot hold a token scrapes ``FEDPARK_METRICS_PORT`` on loopback instead."""
    if not caller.is_park_admin:
        raise PermissionDeniedError("only the park operator's admins read the hub's metrics")
    body = await run_in_threadpool(runtime.metrics.render)  # counts experiments in the catalog
    return Response(body, media_type=CONTENT_TYPE_LATEST)
