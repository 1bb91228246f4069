"""A factory's own page: its declared datasets with their last validation reports, and how to
join the federation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from fedpark.hub.api.deps import RuntimeDep
from fedpark.hub.console.session import ConsolePrincipal, require
from fedpark.hub.console.views import render
from fedpark.hub.domain import Page, Role

router = APIRouter()


@router.get("/factory")
def factory(request: Request, runtime: RuntimeDep, caller: ConsolePrincipal) -> Response:
    require(caller, Role.FACTORY)
    rows = runtime.datasets.of_org(caller, Page(limit=500))
    datasets = [(d, d.report) for d in rows]
    settings = runtime.settings
    return render(
        request,
        "factory.html",
        datasets=datasets,
        hub_url=settings.base_url,
        federation_ready=bool(settings.fleet_address or settings.superlink),
        key_id=runtime.key.key_id,
    )
