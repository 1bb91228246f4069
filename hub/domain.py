"""The authenticated caller and a page of a listing (roles and organization kinds are the
protocol's: :mod:`fedpark.experiments.protocol.resources.identity`)."""

from __future__ import annotations

from dataclasses import dataclass

from fedpark.experiments.protocol.resources.identity import OrgKind, Role

__all__ = ["OrgKind", "Page", "Principal", "Role"]


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
