"""Organizations, users, tokens, the audit trail and health: roles and kinds, bodies in
(``*Create``) and out (``*Public``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from fedpark.contracts.names import Slug


class Role(StrEnum):
    """What a member of an organization may do."""

    ADMIN = "admin"  # manages users and tokens (park-wide when in the operator organization)
    STEWARD = "steward"  # reviews and approves dataset contracts
    RESEARCHER = "researcher"  # launches experiments on approved contracts
    FACTORY = "factory"  # runs a federated client next to its own data
    PARTNER = "partner"  # downloads the models the contracts allow


class OrgKind(StrEnum):
    OPERATOR = "operator"  # the park operator: its admins administer the whole park
    FACTORY = "factory"
    UNIVERSITY = "university"
    RESEARCH = "research"
    PARTNER = "partner"
    OTHER = "other"


Username = Annotated[
    str,
    Field(min_length=2, max_length=63, pattern=r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$"),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class OrganizationCreate(_Strict):
    id: Slug = Field(description="Short unique name, e.g. `acme-steel`")
    name: str = Field(min_length=1, max_length=200)
    kind: OrgKind


class OrganizationPublic(_Public):
    id: str
    name: str
    kind: OrgKind
    created_at: datetime


class UserCreate(_Strict):
    username: Username
    org_id: Slug
    role: Role
    display_name: str = Field(default="", max_length=200)


class UserPublic(_Public):
    id: str
    username: str
    display_name: str
    org_id: str
    role: Role
    active: bool
    created_at: datetime


class TokenCreate(_Strict):
    name: str = Field(min_length=1, max_length=100)
    user_id: str | None = Field(
        default=None, max_length=36, description="Whose token; yourself when omitted"
    )
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenPublic(_Public):
    id: str
    name: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="The secret: shown once, store it now")


class MePublic(BaseModel):
    user: UserPublic
    organization: OrganizationPublic


class AuditRecordPublic(_Public):
    seq: int
    at: datetime
    request_id: str
    actor: str
    actor_org: str | None
    action: str
    object: str
    outcome: str
    status_code: int
    prev_hash: str
    hash: str


class ChainReportPublic(_Public):
    ok: bool
    records: int
    head_seq: int
    head_hash: str
    problems: list[str]


class ComponentHealth(BaseModel):
    status: str = Field(description="`up`, `down`, or `off` (not configured)")
    detail: str = ""


class HealthPublic(BaseModel):
    status: str
    version: str
    storage: ComponentHealth
    catalog: ComponentHealth
    superlink: ComponentHealth = Field(
        default_factory=lambda: ComponentHealth(status="off"),
        description="Flower's SuperLink, which runs the experiments: `off` when the hub has "
        "none (experiments are off), `down` when it does not answer",
    )
