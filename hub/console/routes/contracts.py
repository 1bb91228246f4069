"""Contracts: the stewards' review queue, browsing, a contract's page, approve and reject."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from fedpark.contracts.ref import ContractRef
from fedpark.experiments.protocol.resources.contracts import RejectionCreate
from fedpark.hub.api.deps import AuditDep, RuntimeDep
from fedpark.hub.api.paths import ContractId, Version
from fedpark.hub.console.session import ConsolePrincipal, CsrfChecked, require
from fedpark.hub.console.views import render
from fedpark.hub.domain import Page, Role
from fedpark.hub.errors import InvalidInputError, PermissionDeniedError
from fedpark.hub.lifecycle import ContractStatus

router = APIRouter()

STATUSES = tuple(ContractStatus)


@router.get("/review")
def review_queue(request: Request, runtime: RuntimeDep, caller: ConsolePrincipal) -> Response:
    """Submitted versions waiting for a steward, oldest first."""
    require(caller, Role.STEWARD)
    rows = runtime.contracts.search(
        caller,
        Page(limit=500),
        status=ContractStatus.SUBMITTED,
        domain=None,
        owner=None,
        column=None,
        text=None,
    )
    rows.sort(key=lambda r: r.submitted_at or r.created_at)
    return render(request, "review.html", rows=rows)


@router.get("/contracts")
def contracts(
    request: Request,
    runtime: RuntimeDep,
    caller: ConsolePrincipal,
    status: Annotated[str | None, Query(max_length=16)] = ContractStatus.APPROVED,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    status = status if status in STATUSES else None
    rows = runtime.contracts.search(
        caller,
        Page(limit=500),
        status=status,
        domain=None,
        owner=None,
        column=None,
        text=q or None,
    )
    return render(request, "contracts.html", rows=rows, status=status, q=q or "", statuses=STATUSES)


@router.get("/contracts/{contract_id}/versions/{version}")
def contract_page(
    request: Request,
    contract_id: ContractId,
    version: Version,
    runtime: RuntimeDep,
    caller: ConsolePrincipal,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    row, contract = runtime.contracts.get(caller, contract_id, version)
    versions = runtime.contracts.versions(caller, contract_id)
    compatibility = row.compatibility.model_dump() if row.compatibility else None
    # A version under review has no declarations yet: the steward sees who holds data under
    # the version it would succeed, the factories the change affects.
    declared_under = version
    try:
        declared = runtime.datasets.list(caller, contract_id, version, Page(limit=500))
        under_review = row.status in (ContractStatus.DRAFT, ContractStatus.SUBMITTED)
        if not declared and compatibility and under_review:
            declared_under = compatibility["previous_version"]
            declared = runtime.datasets.list(caller, contract_id, declared_under, Page(limit=500))
    except PermissionDeniedError:
        declared = None  # partners do not see which factories hold data
    datasets = [
        {
            "row": d,
            "report": d.report,
            "profile": d.profile,
        }
        for d in declared or []
    ]
    return render(
        request,
        "contract.html",
        row=row,
        contract=contract,
        versions=versions,
        datasets=datasets,
        datasets_hidden=declared is None,
        declared_under=declared_under,
        compatibility=compatibility,
        done=done if done in (ContractStatus.APPROVED, ContractStatus.REJECTED) else None,
        error=None,
    )


@router.post("/contracts/{contract_id}/versions/{version}/approve", dependencies=[CsrfChecked])
def approve(
    contract_id: ContractId,
    version: Version,
    runtime: RuntimeDep,
    caller: ConsolePrincipal,
    audit: AuditDep,
) -> Response:
    audit.action = "contract.approve"
    audit.object = ContractRef(contract_id, version).audit_object
    require(caller, Role.STEWARD)
    runtime.contracts.approve(caller, contract_id, version)
    return RedirectResponse(
        f"/console/contracts/{contract_id}/versions/{version}?done=approved", status_code=303
    )


@router.post("/contracts/{contract_id}/versions/{version}/reject", dependencies=[CsrfChecked])
def reject(
    contract_id: ContractId,
    version: Version,
    runtime: RuntimeDep,
    caller: ConsolePrincipal,
    audit: AuditDep,
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    audit.action = "contract.reject"
    audit.object = ContractRef(contract_id, version).audit_object
    require(caller, Role.STEWARD)
    try:
        body = RejectionCreate(reason=reason.strip())
    except ValidationError:
        raise InvalidInputError(
            "give the authors a reason of 3 to 2000 characters", field="reason"
        ) from None
    runtime.contracts.reject(caller, contract_id, version, body.reason)
    return RedirectResponse(
        f"/console/contracts/{contract_id}/versions/{version}?done=rejected", status_code=303
    )
