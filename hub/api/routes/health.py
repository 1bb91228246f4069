"""Liveness of the hub's components, for load balancers and operators (no token)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from fedpark.experiments.protocol.resources.identity import ComponentHealth, HealthPublic
from fedpark.hub.api.deps import RuntimeDep
from fedpark.hub.errors import FedparkError, unavailable_message
from fedpark.hub.version import __version__

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


def _probe(check: object) -> ComponentHealth:
    try:
        check()  # type: ignore[operator]
    except FedparkError as exc:  # needs no token: what is down, not where or why in detail
        log.warning("health: %s", exc)
        return ComponentHealth(status="down", detail=unavailable_message(exc))
    return ComponentHealth(status="up")


@router.get(
    "/health",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "A component is down"}},
)
async def health(runtime: RuntimeDep) -> JSONResponse:
    """Whether the object store and the catalog answer. Needs no token."""
    storage = await run_in_threadpool(_probe, runtime.storage.objects.check)
    catalog = await run_in_threadpool(_probe, runtime.storage.catalog.check)
    up = storage.status == catalog.status == "up"
    body = HealthPublic(
        status="up" if up else "down", version=__version__, storage=storage, catalog=catalog
    )
    return JSONResponse(body.model_dump(), status_code=200 if up else 503)
