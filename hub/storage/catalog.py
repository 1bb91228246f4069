"""The SQL catalog: engine, sessions and migrations (SQLite by default, any SQLAlchemy URL)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from fedpark.hub.errors import (
    CatalogError,
    ChangedMeanwhileError,
    ConfigurationError,
    ConflictError,
    FedparkError,
)
from fedpark.hub.storage.repositories import (
    AuditRepo,
    ConsoleSessionRepo,
    ContractRepo,
    DatasetRepo,
    ExperimentRepo,
    OrganizationRepo,
    TokenRepo,
    UserRepo,
)

log = logging.getLogger(__name__)
# Alembic announces each of its autogenerate plugins at INFO when its commands are imported
# (hence imported in ``migrate``, after this); the lines that say which migrations ran
# (alembic.runtime.migration) stay.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


# Called inside a transaction that changed something, just before it commits; what it
# returns runs once the commit succeeded. The audit log uses it to commit each request's
# record in the same transaction as the request's change.
WriteHook = Callable[["UnitOfWork"], Callable[[], None] | None]


def _note_write(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        session.info["wrote"] = True


def _note_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info["wrote"] = True


@dataclass
class UnitOfWork:
    """Repositories sharing one catalog transaction."""

    session: Session
    orgs: OrganizationRepo
    users: UserRepo
    tokens: TokenRepo
    console_sessions: ConsoleSessionRepo
    audit: AuditRepo
    contracts: ContractRepo
    datasets: DatasetRepo
    experiments: ExperimentRepo


class Catalog:
    """One database: a session factory plus ``migrate`` and ``check``.

    Parameters
    ----------
    url
        A SQLAlchemy URL, e.g. ``sqlite:////var/lib/fedpark/catalog.db`` or
        ``postgresql+psycopg://fedpark@db/fedpark``.
    """

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigurationError(f"invalid database URL: {exc}") from None
        self.url = parsed
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        try:
            self.engine: Engine = create_engine(parsed, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise ConfigurationError(f"cannot use database {self.display_url}: {exc}") from None
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self._sessions, "before_flush", _note_write)
        event.listen(self._sessions, "do_orm_execute", _note_statement)
        self.on_write: WriteHook | None = None
        self.on_error: Callable[[FedparkError], None] | None = None  # told of outages: metrics

    @property
    def backend(self) -> str:
        return str(self.url.get_backend_name())

    @property
    def display_url(self) -> str:
        """The URL with any password masked, for logs and errors."""
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def unit_of_work(self, *, bookkeeping: bool = False) -> Iterator[UnitOfWork]:
        """Commit on success, roll back on error; a unique-key clash becomes ConflictError.

        A transaction that changed something runs :attr:`on_write` before it commits, unless
        it is ``bookkeeping`` (a token's last use, the audit log's own records): changes that
        are not what a request asked for.
        """
        committed: Callable[[], None] | None = None
        try:
            with self._sessions() as session, session.begin():
                uow = UnitOfWork(
                    session=session,
                    orgs=OrganizationRepo(session),
                    users=UserRepo(session),
                    tokens=TokenRepo(session),
                    console_sessions=ConsoleSessionRepo(session),
                    audit=AuditRepo(session),
                    contracts=ContractRepo(session),
                    datasets=DatasetRepo(session),
                    experiments=ExperimentRepo(session),
                )
                yield uow
                session.flush()
                if self.on_write is not None and session.info.get("wrote") and not bookkeeping:
                    committed = self.on_write(uow)
        except SQLIntegrityError:
            # The driver's text names tables and values: not for an answer.
            raise ConflictError("conflicts with an existing record") from None
        except StaleDataError:
            raise ChangedMeanwhileError(
                "another request changed this meanwhile; read it again and retry"
            ) from None
        except (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError) as exc:
            # A restart or a lost connection: the pool reconnects (pre-ping) next time. The
            # driver's text (SQL, parameters) stays out of answers and logs: its kind only.
            cause = type(getattr(exc, "orig", None) or exc).__name__
            log.warning("catalog %s unavailable (%s)", self.display_url, cause)
            raise self._reported(
                CatalogError(f"the catalog at {self.display_url} is unavailable")
            ) from None
        if committed is not None:
            committed()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", "fedpark.hub.storage:migrations")
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except OperationalError as exc:
            raise self._reported(
                CatalogError(f"cannot open the catalog at {self.display_url}: {exc.orig}")
            ) from None

    def check(self) -> None:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise self._reported(
                CatalogError(f"catalog {self.display_url} unavailable: {exc}")
            ) from None

    def _reported(self, exc: CatalogError) -> CatalogError:
        if self.on_error is not None:
            self.on_error(exc)
        return exc

    def dispose(self) -> None:
        self.engine.dispose()
