"""Bodies of the contract and declared-dataset endpoints."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fedpark.contracts.report import DataProfile, Declaration, ValidationReport


class ContractStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    DEPRECATED = "deprecated"
    RETIRED = "retired"


class ContractAction(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    DEPRECATE = "deprecate"
    RETIRE = "retire"


class ContractChange(BaseModel):
    kind: str
    field: str
    message: str


class Compatibility(BaseModel):
    previous_version: str
    compatible: bool
    changes: list[ContractChange]


class ContractVersionPublic(BaseModel):
    """A contract version's state; ``document`` is the contract itself (when asked for)."""

    model_config = ConfigDict(from_attributes=True)

    contract_id: str
    version: str
    title: str
    domain: str
    owner_org: str
    status: ContractStatus
    document_sha256: str
    schema_sha256: str
    signed: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    submitted_by: str | None
    submitted_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    compatibility: Compatibility | None = None
    document: dict[str, Any] | None = None


class RejectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=2000, description="Why, for the authors")


# A declaration: the validation report and profile computed at the factory (no rows), one
# model on both sides of the wire.
DatasetCreate = Declaration


class DatasetPublic(BaseModel):
    id: str
    contract_id: str
    version: str
    org_id: str
    name: str
    declared_by: str
    declared_at: datetime
    rows: int
    compliant: bool
    rule_counts: dict[str, int]
    report: ValidationReport
    profile: DataProfile
