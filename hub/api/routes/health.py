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
NO_SUPERLINK = "no Flower SuperLink configured (FEDPARK_SUPERLINK): experiments are off"
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
    """Whether the object store, the catalog and the Flower SuperLink answer. Needs no token.

    503 when storage or the catalog is down (the hub cannot serve). A SuperLink that is down
    leaves the hub serving (contracts, models, the console) with ``status`` ``degraded``:
    experiments will not run; one not configured is ``off``, and says how to configure it.
    """
    storage = await run_in_threadpool(_probe, runtime.storage.objects.check)
    catalog = await run_in_threadpool(_probe, runtime.storage.catalog.check)
    flower = runtime.federation.flower
    superlink = (
        await run_in_threadpool(_probe, lambda: flower.check(quiet=True))
        if flower is not None
        else ComponentHealth(status="off", detail=NO_SUPERLINK)
    )
    up = storage.status == catalog.status == "up"
    status = "down" if not up else "degraded" if superlink.status == "down" else "up"
    body = HealthPublic(
        status=status, version=__version__, storage=storage, catalog=catalog, superlink=superlink
    )
    return JSONResponse(body.model_dump(), status_code=200 if up else 503)
