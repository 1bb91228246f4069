from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fedpark.experiments.protocol.resources.identity import AuditRecordPublic, ChainReportPublic
from fedpark.hub.api.deps import AdminPrincipal, RuntimeDep
from fedpark.hub.errors import PermissionDeniedError

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=list[AuditRecordPublic])
def list_audit(
    runtime: RuntimeDep,
    caller: AdminPrincipal,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditRecordPublic]:
    """Records after ``after_seq`` in chain order (park admins: all; org admins: their org's)."""
    records = runtime.audit.list(caller, after_seq=after_seq, limit=limit)
    return [AuditRecordPublic.model_validate(r) for r in records]


@router.get("/verify", response_model=ChainReportPublic)
def verify_audit(runtime: RuntimeDep, caller: AdminPrincipal) -> ChainReportPublic:
    """Walk the whole chain and report changed, removed or reordered records (park admins)."""
    if not caller.is_park_admin:
        raise PermissionDeniedError("only the park operator's admins verify the whole chain")
    return ChainReportPublic.model_validate(runtime.audit.verify())
