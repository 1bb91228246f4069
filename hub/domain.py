"""Roles, organization kinds, the authenticated caller, and a page of a listing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


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


@dataclass(frozen=True)
class Principal:
    """Who is calling: resolved from a bearer token on every request."""

    user_id: str
    username: str
    org_id: str
    org_kind: OrgKind
    role: Role
    token_id: str

    @property
    def is_park_admin(self) -> bool:
        return self.role is Role.ADMIN and self.org_kind is OrgKind.OPERATOR

    def administers(self, org_id: str) -> bool:
        """Whether this caller manages the members and tokens of ``org_id``."""
        return self.is_park_admin or (self.role is Role.ADMIN and self.org_id == org_id)

    def sees_org_private(self, org_id: str) -> bool:
        """Whether another organization's private objects are visible (park admins only)."""
        return self.is_park_admin or self.org_id == org_id


@dataclass(frozen=True)
class Page:
    """Which slice of a listing: ``limit`` items from ``offset``."""

    offset: int = 0
    limit: int = 100


class Restart(BaseModel):
    """An experiment's Flower run was lost (its SuperLink restarted) and the hub resumed it."""

    at: datetime
    from_round: int = Field(description="The checkpoint the continuation started from")
    reason: str = Field(description="What Flower said about the lost run")
    flower_run_id: str | None = Field(description="The lost run")
