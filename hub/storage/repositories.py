"""Queries over the catalog tables; services use these and never build SQL themselves."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, text, tuple_, update
from sqlalchemy.orm import Session

from fedpark.hub.lifecycle import EXPERIMENT_TRANSITIONS, ExperimentStatus
from fedpark.hub.storage.models import (
    ApiToken,
    AuditHead,
    AuditRecord,
    ConsoleSession,
    ContractColumnIndex,
    ContractVersion,
    DeclaredDataset,
    Experiment,
    ExperimentRound,
    Organization,
    TrainedModel,
    User,
)


class OrganizationRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, org_id: str) -> Organization | None:
        return self.session.get(Organization, org_id)

    def add(self, org: Organization) -> Organization:
        self.session.add(org)
        self.session.flush()
        return org

    def list(
        self, *, offset: int, limit: int, ids: Sequence[str] | None = None
    ) -> list[Organization]:
        query = select(Organization).order_by(Organization.id).offset(offset).limit(limit)
        if ids is not None:
            query = query.where(Organization.id.in_(ids))
        return list(self.session.scalars(query))


class UserRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, user_id: str) -> User | None:
        return self.session.get(User, user_id)

    def by_username(self, username: str) -> User | None:
        return self.session.scalar(select(User).where(User.username == username))

    def add(self, user: User) -> User:
        self.session.add(user)
        self.session.flush()
        return user

    def count(self) -> int:
        return self.session.scalar(select(func.count()).select_from(User)) or 0

    def list(self, *, offset: int, limit: int, org_id: str | None = None) -> list[User]:
        query = select(User).order_by(User.username).offset(offset).limit(limit)
        if org_id is not None:
            query = query.where(User.org_id == org_id)
        return list(self.session.scalars(query))


class TokenRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, token_id: str) -> ApiToken | None:
        return self.session.get(ApiToken, token_id)

    def by_hash(self, token_hash: str) -> ApiToken | None:
        return self.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))

    def add(self, token: ApiToken) -> ApiToken:
        self.session.add(token)
        self.session.flush()
        return token

    def list(
        self, *, offset: int, limit: int, user_id: str | None = None, org_id: str | None = None
    ) -> list[ApiToken]:
        query = select(ApiToken).join(User).order_by(ApiToken.created_at, ApiToken.id)
        if user_id is not None:
            query = query.where(ApiToken.user_id == user_id)
        if org_id is not None:
            query = query.where(User.org_id == org_id)
        return list(self.session.scalars(query.offset(offset).limit(limit)))

    def revoke_all_of(self, user_id: str, at: datetime) -> None:
        for token in self.session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)):
            token.revoked_at = token.revoked_at or at


class ConsoleSessionRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, session_hash: str) -> ConsoleSession | None:
        return self.session.get(ConsoleSession, session_hash)

    def add(self, row: ConsoleSession) -> ConsoleSession:
        self.session.add(row)
        self.session.flush()
        return row

    def remove(self, session_hash: str) -> None:
        self.session.execute(delete(ConsoleSession).where(ConsoleSession.id == session_hash))

    def purge_expired(self, now: datetime) -> None:
        self.session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))


_CHAIN_LOCK = 0x66706B61  # "fpka": the audit chain's PostgreSQL advisory lock


class AuditRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def head(self) -> AuditHead | None:
        return self.session.get(AuditHead, 1)

    def lock_chain(self) -> None:
        """Hold the chain until this transaction ends, so that reading the head and appending
        after it is one step for every writer (hub replicas included). PostgreSQL: an advisory
        transaction lock; SQLite: its database write lock, taken by a write."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
        else:
            self.session.execute(text("UPDATE audit_head SET seq = seq WHERE id = 1"))

    def append(self, record: AuditRecord) -> None:
        """Add a record and move the head; a concurrent append fails on the primary key."""
        self.session.add(record)
        head = self.head()
        if head is None:
            self.session.add(AuditHead(id=1, seq=record.seq, hash=record.hash))
        else:
            head.seq, head.hash = record.seq, record.hash
        self.session.flush()

    def newest(self, *, limit: int, org_id: str | None = None) -> list[AuditRecord]:
        query = select(AuditRecord)
        if org_id is not None:
            query = query.where(AuditRecord.actor_org == org_id)
        return list(self.session.scalars(query.order_by(AuditRecord.seq.desc()).limit(limit)))

    def list(
        self, *, after_seq: int = 0, limit: int, org_id: str | None = None
    ) -> list[AuditRecord]:
        query = select(AuditRecord).where(AuditRecord.seq > after_seq)
        if org_id is not None:
            query = query.where(AuditRecord.actor_org == org_id)
        return list(self.session.scalars(query.order_by(AuditRecord.seq).limit(limit)))

    def iter_all(self, batch: int = 1000) -> Iterator[AuditRecord]:
        """Every record in chain order, fetched ``batch`` at a time (bounded memory)."""
        query = select(AuditRecord).order_by(AuditRecord.seq).execution_options(yield_per=batch)
        yield from self.session.scalars(query)


class ContractRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, contract_id: str, version: str) -> ContractVersion | None:
        return self.session.get(ContractVersion, (contract_id, version))

    def versions(self, contract_id: str) -> list[ContractVersion]:
        query = select(ContractVersion).where(ContractVersion.contract_id == contract_id)
        return list(self.session.scalars(query))

    def add(self, row: ContractVersion, columns: list[ContractColumnIndex]) -> ContractVersion:
        self.session.add(row)
        self.session.add_all(columns)
        self.session.flush()
        return row

    def all(self) -> list[ContractVersion]:
        return list(self.session.scalars(select(ContractVersion)))

    def replace_columns(
        self, contract_id: str, version: str, columns: list[ContractColumnIndex]
    ) -> None:
        self.session.execute(
            delete(ContractColumnIndex).where(
                ContractColumnIndex.contract_id == contract_id,
                ContractColumnIndex.version == version,
            )
        )
        self.session.add_all(columns)
        self.session.flush()

    def search(
        self,
        *,
        offset: int,
        limit: int,
        statuses: Sequence[str] | None = None,
        domain: str | None = None,
        owner: str | None = None,
        column: str | None = None,
        text: str | None = None,
        visible_to_org: str | None = None,
        public_statuses: Sequence[str] = (),
    ) -> list[ContractVersion]:
        """Filtered versions; with ``visible_to_org`` only public ones or that org's own."""
        query = select(ContractVersion)
        if statuses:
            query = query.where(ContractVersion.status.in_(statuses))
        if domain:
            query = query.where(ContractVersion.domain == domain)
        if owner:
            query = query.where(ContractVersion.owner_org == owner)
        if text:
            pattern = f"%{text.lower()}%"
            query = query.where(
                or_(
                    func.lower(ContractVersion.title).like(pattern),
                    func.lower(ContractVersion.contract_id).like(pattern),
                )
            )
        if column:
            matching = select(ContractColumnIndex.contract_id, ContractColumnIndex.version).where(
                ContractColumnIndex.name == column
            )
            query = query.where(
                tuple_(ContractVersion.contract_id, ContractVersion.version).in_(matching)
            )
        if visible_to_org is not None:
            query = query.where(
                or_(
                    ContractVersion.status.in_(public_statuses),
                    ContractVersion.owner_org == visible_to_org,
                )
            )
        query = query.order_by(ContractVersion.contract_id, ContractVersion.created_at)
        return list(self.session.scalars(query.offset(offset).limit(limit)))


class DatasetRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def find(
        self, contract_id: str, version: str, org_id: str, name: str
    ) -> DeclaredDataset | None:
        return self.session.scalar(
            select(DeclaredDataset).where(
                DeclaredDataset.contract_id == contract_id,
                DeclaredDataset.version == version,
                DeclaredDataset.org_id == org_id,
                DeclaredDataset.name == name,
            )
        )

    def add(self, row: DeclaredDataset) -> DeclaredDataset:
        self.session.add(row)
        self.session.flush()
        return row

    def of_org(self, org_id: str, *, offset: int, limit: int) -> list[DeclaredDataset]:
        query = (
            select(DeclaredDataset)
            .where(DeclaredDataset.org_id == org_id)
            .order_by(DeclaredDataset.declared_at.desc(), DeclaredDataset.id)
        )
        return list(self.session.scalars(query.offset(offset).limit(limit)))

    def list(
        self, contract_id: str, version: str, *, org_id: str | None, offset: int, limit: int
    ) -> list[DeclaredDataset]:
        query = select(DeclaredDataset).where(
            DeclaredDataset.contract_id == contract_id, DeclaredDataset.version == version
        )
        if org_id is not None:
            query = query.where(DeclaredDataset.org_id == org_id)
        query = query.order_by(DeclaredDataset.org_id, DeclaredDataset.name)
        return list(self.session.scalars(query.offset(offset).limit(limit)))


class ExperimentRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, experiment_id: str) -> Experiment | None:
        return self.session.get(Experiment, experiment_id)

    def by_token_hash(self, token_hash: str) -> Experiment | None:
        return self.session.scalar(
            select(Experiment).where(Experiment.run_token_hash == token_hash)
        )

    def add(self, row: Experiment) -> Experiment:
        self.session.add(row)
        self.session.flush()
        return row

    def search(
        self,
        *,
        offset: int,
        limit: int,
        org_id: str | None = None,
        statuses: Sequence[str] | None = None,
    ) -> list[Experiment]:
        query = select(Experiment).order_by(Experiment.created_at.desc())
        if org_id is not None:
            query = query.where(Experiment.org_id == org_id)
        if statuses:
            query = query.where(Experiment.status.in_(statuses))
        return list(self.session.scalars(query.offset(offset).limit(limit)))

    def count_by_status(self) -> dict[str, int]:
        query = select(Experiment.status, func.count()).group_by(Experiment.status)
        return {str(status): int(n) for status, n in self.session.execute(query)}

    def rounds(self, experiment_id: str) -> list[ExperimentRound]:
        query = (
            select(ExperimentRound)
            .where(ExperimentRound.experiment_id == experiment_id)
            .order_by(ExperimentRound.round)
        )
        return list(self.session.scalars(query))

    def move(self, experiment_id: str, to: ExperimentStatus, **fields: object) -> bool:
        """Set the status to ``to`` (and ``fields``) only if the transition table lets the
        experiment reach it from its state now: one UPDATE conditional on the state, so of
        concurrent moves (finish, stop, fail) exactly one wins. Whether this one did."""
        sources = [str(s) for s in EXPERIMENT_TRANSITIONS[to]]
        statement = (
            update(Experiment)
            .where(Experiment.id == experiment_id, Experiment.status.in_(sources))
            .values(status=str(to), **fields)
            .execution_options(synchronize_session=False)
        )
        self.session.flush()  # this session's own pending changes go first
        result = self.session.execute(statement)
        moved = bool(getattr(result, "rowcount", 0) == 1)
        self.session.expire_all()  # rows read before now show the outcome when read again
        return moved

    def all_rounds(self) -> list[ExperimentRound]:
        return list(self.session.scalars(select(ExperimentRound)))

    def all_models(self) -> list[TrainedModel]:
        return list(self.session.scalars(select(TrainedModel)))

    def round(self, experiment_id: str, number: int) -> ExperimentRound | None:
        return self.session.get(ExperimentRound, (experiment_id, number))

    def add_round(self, row: ExperimentRound) -> ExperimentRound:
        self.session.add(row)
        self.session.flush()
        return row

    def drop_round(self, row: ExperimentRound) -> None:
        self.session.delete(row)
        self.session.flush()

    def model(self, experiment_id: str) -> TrainedModel | None:
        return self.session.get(TrainedModel, experiment_id)

    def models(self, *, offset: int, limit: int) -> list[tuple[Experiment, TrainedModel]]:
        query = (
            select(Experiment, TrainedModel)
            .join(TrainedModel, TrainedModel.experiment_id == Experiment.id)
            .order_by(TrainedModel.created_at.desc(), Experiment.id)
        )
        rows = self.session.execute(query.offset(offset).limit(limit))
        return [(run, model) for run, model in rows]

    def add_model(self, row: TrainedModel) -> TrainedModel:
        self.session.add(row)
        self.session.flush()
        return row
