"""Dataset contracts: drafts, review, lifecycle, downloads, declared datasets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from starlette.concurrency import run_in_threadpool

from fedpark.contracts import Contract
from fedpark.contracts.ref import ContractRef
from fedpark.experiments.protocol.resources.contracts import (
    ContractVersionPublic,
    DatasetCreate,
    DatasetPublic,
    RejectionCreate,
)
from fedpark.hub.api.deps import AuditDep, CurrentPrincipal, PageDep, RuntimeDep
from fedpark.hub.api.paths import ContractId, Version, VersionRef
from fedpark.hub.domain import Principal
from fedpark.hub.runtime import HubRuntime
from fedpark.hub.storage.models import ContractPart, ContractVersion, DeclaredDataset

router = APIRouter(prefix="/contracts", tags=["contracts"])
keys = APIRouter(prefix="/keys", tags=["keys"])

VERSION_PATH = "/{contract_id}/versions/{version}"


def public(row: ContractVersion, contract: Contract | None = None) -> ContractVersionPublic:
    compatibility = row.compatibility
    return ContractVersionPublic(
        contract_id=row.contract_id,
        version=row.version,
        title=row.title,
        domain=row.domain,
        owner_org=row.owner_org,
        status=row.status,
        document_sha256=row.document_sha256,
        schema_sha256=row.schema_sha256,
        signed=row.signature_key is not None,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        submitted_by=row.submitted_by,
        submitted_at=row.submitted_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        reason=row.reason,
        compatibility=compatibility,
        document=contract.model_dump(mode="json") if contract else None,
    )


def _name(contract_id: str, version: str) -> str:
    return ContractRef(contract_id, version).audit_object


@router.post("", response_model=ContractVersionPublic, status_code=status.HTTP_201_CREATED)
def create_contract(
    body: Contract, runtime: RuntimeDep, caller: CurrentPrincipal, audit: AuditDep
) -> ContractVersionPublic:
    """Store a draft: a new contract, or a new version of one your organization owns.

    The answer says whether the version is backward compatible with the newest approved one.
    """
    audit.action, audit.object = "contract.create", _name(body.id, body.version)
    return public(runtime.contracts.create(caller, body), body)


@router.get("", response_model=list[ContractVersionPublic])
def search_contracts(
    runtime: RuntimeDep,
    caller: CurrentPrincipal,
    page: PageDep,
    status_: Annotated[str | None, Query(alias="status", max_length=16)] = None,
    domain: Annotated[str | None, Query(max_length=32)] = None,
    owner: Annotated[str | None, Query(max_length=63)] = None,
    column: Annotated[
        str | None, Query(max_length=200, description="Has a column so named")
    ] = None,
    q: Annotated[str | None, Query(max_length=100, description="In the id or title")] = None,
) -> list[ContractVersionPublic]:
    """Contract versions you may see, filtered."""
    rows = runtime.contracts.search(
        caller, page, status=status_, domain=domain, owner=owner, column=column, text=q
    )
    return [public(r) for r in rows]


@router.get("/{contract_id}/versions", response_model=list[ContractVersionPublic])
def list_versions(
    contract_id: ContractId, runtime: RuntimeDep, caller: CurrentPrincipal
) -> list[ContractVersionPublic]:
    return [public(r) for r in runtime.contracts.versions(caller, contract_id)]


@router.get(VERSION_PATH, response_model=ContractVersionPublic)
def get_version(
    contract_id: ContractId, version: Version, runtime: RuntimeDep, caller: CurrentPrincipal
) -> ContractVersionPublic:
    """A version with its state, compatibility and the contract document."""
    row, contract = runtime.contracts.get(caller, contract_id, version)
    return public(row, contract)


@router.put(VERSION_PATH, response_model=ContractVersionPublic)
def update_draft(
    contract_id: ContractId,
    version: Version,
    body: Contract,
    runtime: RuntimeDep,
    caller: CurrentPrincipal,
    audit: AuditDep,
) -> ContractVersionPublic:
    """Replace a draft or rejected version (approved versions are immutable)."""
    audit.action, audit.object = "contract.update", _name(contract_id, version)
    return public(runtime.contracts.update(caller, contract_id, version, body), body)


@router.post(f"{VERSION_PATH}/submit", response_model=ContractVersionPublic)
def submit_contract(
    ref: VersionRef, runtime: RuntimeDep, caller: CurrentPrincipal, audit: AuditDep
) -> ContractVersionPublic:
    """Send a draft to the stewards for review (the owning organization)."""
    audit.action, audit.object = "contract.submit", ref.audit_object
    return public(runtime.contracts.submit(caller, ref.id, ref.version))


@router.post(f"{VERSION_PATH}/approve", response_model=ContractVersionPublic)
def approve_contract(
    ref: VersionRef, runtime: RuntimeDep, caller: CurrentPrincipal, audit: AuditDep
) -> ContractVersionPublic:
    """Approve and sign a submitted version (stewards; not their own)."""
    audit.action, audit.object = "contract.approve", ref.audit_object
    return public(runtime.contracts.approve(caller, ref.id, ref.version))


@router.post(f"{VERSION_PATH}/deprecate", response_model=ContractVersionPublic)
def deprecate_contract(
    ref: VersionRef, runtime: RuntimeDep, caller: CurrentPrincipal, audit: AuditDep
) -> ContractVersionPublic:
    """Mark an approved version as deprecated (stewards)."""
    audit.action, audit.object = "contract.deprecate", ref.audit_object
    return public(runtime.contracts.deprecate(caller, ref.id, ref.version))


@router.post(f"{VERSION_PATH}/retire", response_model=ContractVersionPublic)
def retire_contract(
    ref: VersionRef, runtime: RuntimeDep, caller: CurrentPrincipal, audit: AuditDep
) -> ContractVersionPublic:
    """Retire a deprecated version (stewards)."""
    audit.action, audit.object = "contract.retire", ref.audit_object
    return public(runtime.contracts.retire(caller, ref.id, ref.version))


@router.post(f"{VERSION_PATH}/reject", response_model=ContractVersionPublic)
def reject_contract(
    contract_id: ContractId,
    version: Version,
    body: RejectionCreate,
    runtime: RuntimeDep,
    caller: CurrentPrincipal,
    audit: AuditDep,
) -> ContractVersionPublic:
    """Send a submitted version back with a reason (stewards)."""
    audit.action, audit.object = "contract.reject", _name(contract_id, version)
    return public(runtime.contracts.reject(caller, contract_id, version, body.reason))


async def _artifact(
    runtime: HubRuntime, caller: Principal, ref: ContractRef, part: ContractPart, media_type: str
) -> Response:
    data = await run_in_threadpool(runtime.contracts.artifact, caller, ref.id, ref.version, part)
    return Response(data, media_type=media_type)


@router.get(f"{VERSION_PATH}/document", response_class=Response)
async def download_document(
    ref: VersionRef, runtime: RuntimeDep, caller: CurrentPrincipal
) -> Response:
    """The canonical JSON the hub hashed and signed."""
    return await _artifact(runtime, caller, ref, ContractPart.DOCUMENT, "application/json")


@router.get(f"{VERSION_PATH}/schema", response_class=Response)
async def download_schema(
    ref: VersionRef, runtime: RuntimeDep, caller: CurrentPrincipal
) -> Response:
    """The Arrow IPC schema message, with the contract in its metadata."""
    arrow = "application/vnd.apache.arrow.stream"
    return await _artifact(runtime, caller, ref, ContractPart.SCHEMA, arrow)


@router.get(f"{VERSION_PATH}/signature", response_class=Response)
async def download_signature(
    ref: VersionRef, runtime: RuntimeDep, caller: CurrentPrincipal
) -> Response:
    """The hub's signature of the approval (verify with `fedpark contract verify`)."""
    return await _artifact(runtime, caller, ref, ContractPart.SIGNATURE, "application/json")


def dataset_public(row: DeclaredDataset) -> DatasetPublic:
    report = row.report
    return DatasetPublic(
        id=row.id,
        contract_id=row.contract_id,
        version=row.version,
        org_id=row.org_id,
        name=row.name,
        declared_by=row.declared_by,
        declared_at=row.declared_at,
        rows=row.rows,
        compliant=row.compliant,
        rule_counts=report.rule_counts(),
        report=report,
        profile=row.profile,
    )


@router.post(
    f"{VERSION_PATH}/datasets", response_model=DatasetPublic, status_code=status.HTTP_201_CREATED
)
def declare_dataset(
    contract_id: ContractId,
    version: Version,
    body: DatasetCreate,
    runtime: RuntimeDep,
    caller: CurrentPrincipal,
    audit: AuditDep,
) -> DatasetPublic:
    """Declare that your factory holds data under this version (report and profile, no rows)."""
    audit.action, audit.object = "dataset.declare", f"{_name(contract_id, version)}/{body.name}"
    row = runtime.datasets.declare(
        caller, contract_id, version, body.name, body.report, body.profile
    )
    return dataset_public(row)


@router.get(f"{VERSION_PATH}/datasets", response_model=list[DatasetPublic])
def list_datasets(
    contract_id: ContractId,
    version: Version,
    runtime: RuntimeDep,
    caller: CurrentPrincipal,
    page: PageDep,
) -> list[DatasetPublic]:
    """Which factories hold (compliant) data under this version."""
    return [dataset_public(r) for r in runtime.datasets.list(caller, contract_id, version, page)]


datasets = APIRouter(prefix="/datasets", tags=["contracts"])


@datasets.get("", response_model=list[DatasetPublic])
def own_datasets(
    runtime: RuntimeDep, caller: CurrentPrincipal, page: PageDep
) -> list[DatasetPublic]:
    """Your organization's declared datasets under every contract, newest first (factories)."""
    return [dataset_public(r) for r in runtime.datasets.of_org(caller, page)]


@keys.get("/hub", response_class=Response)
def hub_public_key(runtime: RuntimeDep, caller: CurrentPrincipal) -> Response:
    """The hub's Ed25519 public key (PEM): pin it to verify signatures offline."""
    return Response(
        runtime.key.public_pem,
        media_type="application/x-pem-file",
        headers={"X-Key-Id": runtime.key.key_id},
    )
