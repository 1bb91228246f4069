"""Catalog tables (SQLAlchemy 2.0). Every change to them comes with an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from fedpark.contracts.report import DataProfile, ValidationReport
from fedpark.experiments.protocol import RoundReport
from fedpark.experiments.protocol.resources.contracts import Compatibility
from fedpark.experiments.protocol.resources.experiments import ExperimentCreate, Restart
from fedpark.hub.errors import IntegrityError
from fedpark.hub.storage.objects import ObjectRef


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalog: use timezone-aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


class JsonOf(TypeDecorator[Any]):
    """A text column holding one typed value as JSON: written from the value, read back
    validated into it (a pydantic model, or a list of them), never parsed by hand.

    ``empty`` is the text that stands for None in a NOT NULL column (an empty string for a
    round that has not reported yet); otherwise None is SQL NULL.
    """

    impl = Text
    cache_ok = True

    def __init__(self, kind: Any, empty: str | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.empty = empty

    def _adapter(self) -> TypeAdapter[Any]:
        if self.kind not in _ADAPTERS:
            _ADAPTERS[self.kind] = TypeAdapter(self.kind)
        return _ADAPTERS[self.kind]

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return self.empty
        return self._adapter().dump_json(value).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None or value == self.empty:
            return None
        try:
            return self._adapter().validate_json(value)
        except ValidationError:  # not the caller's doing: stored-data-damaged, an alert
            name = getattr(self.kind, "__name__", str(self.kind))
            raise IntegrityError(f"the catalog holds an unreadable {name}") from None


def utcnow() -> datetime:
    return datetime.now(UTC)


# Named constraints so that migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # a slug
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    users: Mapped[list[User]] = relationship(back_populates="organization")


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    organization: Mapped[Organization] = relationship(back_populates="users")
    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # sha256 of the whole token: tokens are 256-bit random, so a fast hash is enough.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    user: Mapped[User] = relationship(back_populates="tokens")


class ConsoleSession(Base):
    """A signed-in browser: the console's cookie resolves to the API token it signed in with,
    so revoking the token, expiring it or deactivating the user ends the session too."""

    __tablename__ = "console_sessions"

    # sha256 of the cookie's random secret: a database reader cannot sign in with it.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[str] = mapped_column(ForeignKey("api_tokens.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    token: Mapped[ApiToken] = relationship()


class AuditRecord(Base):
    """One state-changing request. Append-only; each record's hash covers the previous one."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    request_id: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    actor_org: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(120))
    object: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's last (seq, hash), written with each record: removing the tail shows."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class ContractPart(StrEnum):
    """What is stored of a contract version."""

    DOCUMENT = "document"  # the canonical JSON the hub hashed and signed
    SCHEMA = "schema"  # the Arrow schema as IPC bytes
    SIGNATURE = "signature"  # the hub's approval (once approved)


class ModelPart(StrEnum):
    """What is stored of a trained model."""

    WEIGHTS = "weights"
    MANIFEST = "manifest"
    SIGNATURE = "signature"


class ContractVersion(Base):
    """One version of a dataset contract; its bytes live in the object store."""

    __tablename__ = "contract_versions"

    contract_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_org: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    document_sha256: Mapped[str] = mapped_column(String(64))
    document_key: Mapped[str] = mapped_column(String(300))
    document_version_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    schema_sha256: Mapped[str] = mapped_column(String(64))
    schema_key: Mapped[str] = mapped_column(String(300))
    schema_version_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    signature_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    signature_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    signature_version_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Changes from the newest version data may be held under.
    compatibility: Mapped[Compatibility | None] = mapped_column(
        JsonOf(Compatibility), nullable=True
    )
    created_by: Mapped[str] = mapped_column(String(64))

    def ref(self, part: ContractPart) -> ObjectRef | None:
        """Where ``part`` is stored; None for a signature not made yet."""
        match part:
            case ContractPart.DOCUMENT:
                return ObjectRef(self.document_key, self.document_sha256, self.document_version_id)
            case ContractPart.SCHEMA:
                return ObjectRef(self.schema_key, self.schema_sha256, self.schema_version_id)
            case ContractPart.SIGNATURE:
                if self.signature_key is None:
                    return None
                return ObjectRef(
                    self.signature_key, self.signature_sha256, self.signature_version_id
                )

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Bumped by every change, and every UPDATE is conditional on the value it read: a change
    # made from a stale read fails instead of overwriting (two stewards deciding at once
    # cannot both win).
    row_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": row_version}  # noqa: RUF012 - SQLAlchemy's API


class ContractColumnIndex(Base):
    """Column names and types of each version, for search."""

    __tablename__ = "contract_columns"

    contract_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    type: Mapped[str] = mapped_column(String(500))
    role: Mapped[str] = mapped_column(String(16))


class DeclaredDataset(Base):
    """A factory's statement that it holds data under a contract version (no rows)."""

    __tablename__ = "declared_datasets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contract_id: Mapped[str] = mapped_column(String(63), index=True)
    version: Mapped[str] = mapped_column(String(64))
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    declared_by: Mapped[str] = mapped_column(String(64))
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rows: Mapped[int] = mapped_column(Integer)
    compliant: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[ValidationReport] = mapped_column(JsonOf(ValidationReport))
    profile: Mapped[DataProfile] = mapped_column(JsonOf(DataProfile))

    __table_args__ = (UniqueConstraint("contract_id", "version", "org_id", "name"),)


class Experiment(Base):
    """A federated training run on one approved contract version."""

    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    contract_id: Mapped[str] = mapped_column(String(63), index=True)
    contract_version: Mapped[str] = mapped_column(String(64))
    contract_sha256: Mapped[str] = mapped_column(String(64))
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    settings: Mapped[ExperimentCreate] = mapped_column(JsonOf(ExperimentCreate))  # the launch
    participants: Mapped[list[str]] = mapped_column(JsonOf(list[str]))  # organization ids
    # Flower run ids are unsigned 64-bit: wider than SQL BIGINT, so kept as text.
    flower_run_id: Mapped[str | None] = mapped_column(String(20), nullable=True)
    run_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    rounds_completed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The spec the ServerApp was started with, minus its token: a run lost with its SuperLink
    # is started again from it (and its last checkpoint). NULL for runs from before 0005.
    # The run spec without where to report (the hub resumes a lost run from it).
    run_spec: Mapped[dict[str, Any] | None] = mapped_column(JsonOf(dict[str, Any]), nullable=True)
    restarts: Mapped[list[Restart]] = mapped_column(
        JsonOf(list[Restart]), default=list, server_default="[]"
    )


class ExperimentRound(Base):
    """One finished round: its report (per-factory metrics, refusals) and checkpoint."""

    __tablename__ = "experiment_rounds"

    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id"), primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    # None until the round has reported (stored as an empty text).
    report: Mapped[RoundReport | None] = mapped_column(
        JsonOf(RoundReport, empty=""), nullable=False
    )
    checkpoint_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    checkpoint_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checkpoint_version_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def checkpoint(self) -> ObjectRef | None:
        if self.checkpoint_key is None:
            return None
        return ObjectRef(self.checkpoint_key, self.checkpoint_sha256, self.checkpoint_version_id)


class TrainedModel(Base):
    """The final model of an experiment, its signed provenance manifest, and where they are."""

    __tablename__ = "models"

    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id"), primary_key=True)
    weights_key: Mapped[str] = mapped_column(String(300))
    weights_sha256: Mapped[str] = mapped_column(String(64))
    weights_version_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    manifest_key: Mapped[str] = mapped_column(String(300))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    manifest_version_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    signature_key: Mapped[str] = mapped_column(String(300))
    signature_sha256: Mapped[str] = mapped_column(String(64))
    signature_version_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # JSON list: the factories whose updates entered an aggregated round (not the invitees).
    contributors: Mapped[list[str]] = mapped_column(
        JsonOf(list[str]), default=list, server_default="[]"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def ref(self, part: ModelPart) -> ObjectRef:
        match part:
            case ModelPart.WEIGHTS:
                return ObjectRef(self.weights_key, self.weights_sha256, self.weights_version_id)
            case ModelPart.MANIFEST:
                return ObjectRef(self.manifest_key, self.manifest_sha256, self.manifest_version_id)
            case ModelPart.SIGNATURE:
                return ObjectRef(
                    self.signature_key, self.signature_sha256, self.signature_version_id
                )
