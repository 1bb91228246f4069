"""Models for partners: what they may download, the provenance manifest shown readably, the
downloads themselves and the command that verifies them offline."""

from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from fedpark.experiments.protocol.card import model_card
from fedpark.experiments.protocol.manifest import ModelManifest
from fedpark.hub.api.deps import RuntimeDep
from fedpark.hub.api.paths import ExperimentId
from fedpark.hub.api.transfers import file_response
from fedpark.hub.console.session import ConsolePrincipal
from fedpark.hub.console.views import render
from fedpark.hub.domain import Page
from fedpark.hub.storage.models import ModelPart

router = APIRouter()

# What a download is saved as: the names `fedpark model verify` expects by default.
FILES = {
    "weights": ("model.safetensors", "application/octet-stream"),
    "manifest": ("manifest.json", "application/json"),
    "signature": ("manifest.sig.json", "application/json"),
}


@router.get("/models")
def models(request: Request, runtime: RuntimeDep, caller: ConsolePrincipal) -> Response:
    rows = runtime.experiments.downloadable(caller, Page(limit=200))
    return render(request, "models.html", rows=rows)


@router.get("/models/{experiment_id}")
def model_page(
    request: Request, experiment_id: ExperimentId, runtime: RuntimeDep, caller: ConsolePrincipal
) -> Response:
    model = runtime.experiments.model_access(caller, experiment_id)
    manifest = json.loads(
        runtime.experiments.model_bytes(caller, experiment_id, ModelPart.MANIFEST)
    )
    rounds = manifest.get("rounds", [])
    metric_keys = sorted({k for r in rounds for k in r.get("evaluate", {})})
    card = None
    if "package" in manifest:  # models sealed before packages have no card to show
        card = model_card(ModelManifest.model_validate(manifest), f"{experiment_id}")
    return render(
        request,
        "model.html",
        model=model,
        manifest=manifest,
        card=card,
        rounds=rounds,
        metric_keys=metric_keys,
        key_id=runtime.key.key_id,
        files=FILES,
    )


@router.get("/models/{experiment_id}/files/{part}")
async def download(
    experiment_id: ExperimentId,
    part: Literal["weights", "manifest", "signature"],
    runtime: RuntimeDep,
    caller: ConsolePrincipal,
) -> Response:
    path = await run_in_threadpool(
        runtime.experiments.model_file, caller, experiment_id, ModelPart(part)
    )
    name, media_type = FILES[part]
    return file_response(path, media_type, f"{experiment_id}-{name}")


@router.get("/hub-key.pem")
def hub_key(runtime: RuntimeDep, caller: ConsolePrincipal) -> Response:
    """The hub's public key, to pin and verify manifests with."""
    return Response(
        runtime.key.public_pem,
        media_type="application/x-pem-file",
        headers={"Content-Disposition": 'attachment; filename="hub-key.pem"'},
    )
