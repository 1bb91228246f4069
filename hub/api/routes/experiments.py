"""Experiments for researchers, run reports from the ServerApp, models for partners."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from fedpark.experiments.protocol.resources.experiments import (
    ExperimentCreate,
    ExperimentPublic,
    FederationPublic,
    ModelPublic,
    ModelSummaryPublic,
    NodeCreate,
    NodePublic,
    RoundPublic,
    RoundReportCreate,
    RunFailureCreate,
    RunFinishCreate,
)
from fedpark.hub.api.deps import (
    AuditDep,
    CurrentPrincipal,
    PageDep,
    RuntimeDep,
    authenticated,
    client_address,
)
from fedpark.hub.api.paths import ExperimentId
from fedpark.hub.api.transfers import file_response, spooled_body
from fedpark.hub.domain import Role
from fedpark.hub.errors import AuthenticationError, FlowerUnavailableError, PermissionDeniedError
from fedpark.hub.storage.models import Experiment, ModelPart

router = APIRouter(prefix="/experiments", tags=["experiments"])
runs = APIRouter(prefix="/runs", tags=["runs (ServerApp only)"])
models = APIRouter(prefix="/models", tags=["models"])

_run_bearer = HTTPBearer(auto_error=False, description="The run's own token (ServerApp only)")


def public(row: Experiment) -> ExperimentPublic:
    return ExperimentPublic(
        id=row.id,
        name=row.name,
        contract_id=row.contract_id,
        contract_version=row.contract_version,
        contract_sha256=row.contract_sha256,
        org_id=row.org_id,
        created_by=row.created_by,
        status=row.status,
        participants=row.participants,
        rounds=row.settings.rounds,
        rounds_completed=row.rounds_completed,
        flower_run_id=row.flower_run_id,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        error=row.error,
        settings=row.settings.model_dump(mode="json"),
        restarts=row.restarts,
    )


@router.post("", response_model=ExperimentPublic, status_code=status.HTTP_201_CREATED)
def launch_experiment(
    body: ExperimentCreate, runtime: RuntimeDep, caller: CurrentPrincipal, audit: AuditDep
) -> ExperimentPublic:
    """Start federated training on an approved contract version (researchers)."""
    audit.action = "experiment.launch"
    audit.object = body.contract.audit_object
    row = runtime.experiments.launch(caller, body)
    audit.object = f"experiment:{row.id}"
    return public(row)


@router.get("", response_model=list[ExperimentPublic])
def list_experiments(
    runtime: RuntimeDep, caller: CurrentPrincipal, page: PageDep
) -> list[ExperimentPublic]:
    return [public(r) for r in runtime.experiments.visible(caller, page)]


@router.get("/{experiment_id}", response_model=ExperimentPublic)
def get_experiment(
    experiment_id: ExperimentId, runtime: RuntimeDep, caller: CurrentPrincipal
) -> ExperimentPublic:
    return public(runtime.experiments.get(caller, experiment_id))


@router.get("/{experiment_id}/rounds", response_model=list[RoundPublic])
def list_rounds(
    experiment_id: ExperimentId, runtime: RuntimeDep, caller: CurrentPrincipal
) -> list[RoundPublic]:
    """Per-round metrics: aggregated, per factory, and which factories were refused."""
    return [
        RoundPublic(
            round=r.round,
            report=r.report,
            checkpoint_sha256=r.checkpoint_sha256,
            created_at=r.created_at,
        )
        for r in runtime.experiments.rounds(caller, experiment_id)
    ]


@router.post("/{experiment_id}/stop", response_model=ExperimentPublic)
def stop_experiment(
    experiment_id: ExperimentId, runtime: RuntimeDep, caller: CurrentPrincipal, audit: AuditDep
) -> ExperimentPublic:
    audit.action, audit.object = "experiment.stop", f"experiment:{experiment_id}"
    return public(runtime.experiments.stop(caller, experiment_id))


def get_run(
    request: Request,
    experiment_id: ExperimentId,
    runtime: RuntimeDep,
    audit: AuditDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_run_bearer)],
) -> Experiment:
    if credentials is None:
        raise AuthenticationError("send the run token as `Authorization: Bearer <token>`")
    secret = credentials.credentials
    finish = request.url.path.endswith("/finish")  # a retried finish may find it finished
    run = authenticated(
        runtime,
        client_address(request),
        lambda: runtime.runs.authenticate_run(experiment_id, secret, finished_ok=finish),
    )
    audit.actor, audit.actor_org = f"run:{run.id}", run.org_id
    return run


RunDep = Annotated[Experiment, Depends(get_run)]


@runs.put("/{experiment_id}/rounds/{number}/checkpoint", status_code=204)
async def upload_checkpoint(
    number: Annotated[int, Path(ge=1, le=100_000)],
    request: Request,
    runtime: RuntimeDep,
    run: RunDep,
    audit: AuditDep,
) -> Response:
    audit.action, audit.object = "run.checkpoint", f"experiment:{run.id}/round:{number}"
    with runtime.storage.objects.spool() as spool:
        await spooled_body(request, spool)
        await run_in_threadpool(runtime.runs.store_checkpoint, run, number, spool)
    return Response(status_code=204)


@runs.get("/{experiment_id}/rounds/{number}/checkpoint", response_class=Response)
async def download_checkpoint(
    number: Annotated[int, Path(ge=1, le=100_000)],
    runtime: RuntimeDep,
    run: RunDep,
    audit: AuditDep,
) -> Response:
    """A recorded round's weights (safetensors): where a resumed run starts from."""
    audit.action, audit.object = "run.read_checkpoint", f"experiment:{run.id}/round:{number}"
    path = await run_in_threadpool(runtime.runs.checkpoint_file, run, number)
    return file_response(path, "application/octet-stream")


@runs.post("/{experiment_id}/rounds", status_code=204)
def report_round(
    body: RoundReportCreate, runtime: RuntimeDep, run: RunDep, audit: AuditDep
) -> Response:
    audit.action, audit.object = "run.round", f"experiment:{run.id}/round:{body.round}"
    runtime.runs.record_round(run, body)
    return Response(status_code=204)


@runs.put("/{experiment_id}/model", status_code=204)
async def upload_model(
    request: Request, runtime: RuntimeDep, run: RunDep, audit: AuditDep
) -> Response:
    audit.action, audit.object = "run.model", f"experiment:{run.id}"
    with runtime.storage.objects.spool() as spool:
        await spooled_body(request, spool)
        await run_in_threadpool(runtime.runs.store_model, run, spool)
    return Response(status_code=204)


@runs.post("/{experiment_id}/finish", status_code=204)
def finish_run(
    body: RunFinishCreate, runtime: RuntimeDep, run: RunDep, audit: AuditDep
) -> Response:
    audit.action, audit.object = "run.finish", f"experiment:{run.id}"
    runtime.runs.finish(run, body)
    return Response(status_code=204)


@runs.post("/{experiment_id}/fail", status_code=204)
def fail_run(body: RunFailureCreate, runtime: RuntimeDep, run: RunDep, audit: AuditDep) -> Response:
    audit.action, audit.object = "run.fail", f"experiment:{run.id}"
    runtime.runs.fail(run, body.reason)
    return Response(status_code=204)


@models.get("", response_model=list[ModelSummaryPublic])
def list_models(
    runtime: RuntimeDep, caller: CurrentPrincipal, page: PageDep
) -> list[ModelSummaryPublic]:
    """The models your organization may download (the contracts' policies), newest first."""
    return [
        ModelSummaryPublic(
            experiment_id=run.id,
            name=run.name,
            contract_id=run.contract_id,
            contract_version=run.contract_version,
            org_id=run.org_id,
            contributors=model.contributors,
            weights_sha256=model.weights_sha256,
            created_at=model.created_at,
        )
        for run, model in runtime.experiments.downloadable(caller, page)
    ]


@models.get("/{experiment_id}", response_model=ModelPublic)
def get_model(
    experiment_id: ExperimentId, runtime: RuntimeDep, caller: CurrentPrincipal
) -> ModelPublic:
    """The model's provenance manifest (organizations the contract allows, and the owners)."""
    model = runtime.experiments.model_access(caller, experiment_id)
    manifest = runtime.experiments.model_bytes(caller, experiment_id, ModelPart.MANIFEST)
    return ModelPublic(
        experiment_id=experiment_id,
        weights_sha256=model.weights_sha256,
        manifest=json.loads(manifest),
        created_at=model.created_at,
    )


@models.get("/{experiment_id}/weights", response_class=FileResponse)
async def download_model_weights(
    experiment_id: ExperimentId, runtime: RuntimeDep, caller: CurrentPrincipal
) -> FileResponse:
    """The weights (safetensors), verified before the first byte is sent."""
    path = await run_in_threadpool(
        runtime.experiments.model_file, caller, experiment_id, ModelPart.WEIGHTS
    )
    return file_response(path, "application/octet-stream")


@models.get("/{experiment_id}/manifest", response_class=Response)
async def download_model_manifest(
    experiment_id: ExperimentId, runtime: RuntimeDep, caller: CurrentPrincipal
) -> Response:
    """The provenance manifest, byte for byte."""
    data = await run_in_threadpool(
        runtime.experiments.model_bytes, caller, experiment_id, ModelPart.MANIFEST
    )
    return Response(data, media_type="application/json")


@models.get("/{experiment_id}/signature", response_class=Response)
async def download_model_signature(
    experiment_id: ExperimentId, runtime: RuntimeDep, caller: CurrentPrincipal
) -> Response:
    """The hub's signature of the manifest."""
    data = await run_in_threadpool(
        runtime.experiments.model_bytes, caller, experiment_id, ModelPart.SIGNATURE
    )
    return Response(data, media_type="application/json")


federation = APIRouter(prefix="/federation", tags=["factories"])


@federation.get("", response_model=FederationPublic)
def federation_settings(runtime: RuntimeDep, caller: CurrentPrincipal) -> FederationPublic:
    """Where a factory's SuperNode connects, and the hub key to pin (factories)."""
    if caller.role is not Role.FACTORY:
        raise PermissionDeniedError("only factories join the federation")
    settings = runtime.settings
    address = settings.fleet_address or settings.superlink
    if address is None:
        raise FlowerUnavailableError.not_configured()
    return FederationPublic(
        fleet_address=address,
        org_id=caller.org_id,
        hub_url=settings.base_url,
        hub_key_pem=runtime.key.public_pem.decode(),
        hub_key_id=runtime.key.key_id,
        fleet_ca_pem=settings.flower_ca_file.read_text() if settings.flower_ca_file else None,
        node_auth=settings.supernode_auth,
    )


@federation.post("/nodes", response_model=NodePublic, status_code=status.HTTP_201_CREATED)
def register_node(
    body: NodeCreate, runtime: RuntimeDep, caller: CurrentPrincipal, audit: AuditDep
) -> NodePublic:
    """Register this factory's SuperNode key with the SuperLink (factories, when joining).

    Only registered keys may connect where the SuperLink enforces node authentication.
    """
    audit.action, audit.object = "federation.register_node", f"org:{caller.org_id}"
    node_id = runtime.federation.register_node(caller, body.public_key)
    audit.object = f"node:{node_id}"
    return NodePublic(node_id=str(node_id), org_id=caller.org_id)
