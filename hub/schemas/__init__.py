"""Request and response bodies: ``*Create`` / ``*Update`` come in, ``*Public`` goes out."""

from fedpark.hub.schemas.identity import (
    AuditRecordPublic,
    ChainReportPublic,
    ComponentHealth,
    HealthPublic,
    MePublic,
    OrganizationCreate,
    OrganizationPublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserCreate,
    UserPublic,
)

__all__ = [
    "AuditRecordPublic",
    "ChainReportPublic",
    "ComponentHealth",
    "HealthPublic",
    "MePublic",
    "OrganizationCreate",
    "OrganizationPublic",
    "TokenCreate",
    "TokenCreated",
    "TokenPublic",
    "UserCreate",
    "UserPublic",
]
