"""The append-only, hash-chained audit log.

Each record's hash is ``HMAC-SHA256(key, canonical JSON of the record with the previous
record's hash)``. Changing a record breaks its hash; removing or reordering records breaks the
``seq`` run or the ``prev_hash`` links; removing the tail disagrees with the stored head. The
HMAC key (outside the database) means that someone who can write to the database alone cannot
rebuild a consistent chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from fedpark.hub.domain import Principal, Role
from fedpark.hub.errors import ConflictError, PermissionDeniedError
from fedpark.hub.metrics import HubMetrics
from fedpark.hub.storage import Catalog, UnitOfWork
from fedpark.hub.storage.models import AuditRecord, utcnow

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_APPEND_ATTEMPTS = 20


@dataclass
class AuditEntry:
    """What one state-changing request did; filled in while the request runs."""

    request_id: str
    action: str
    object: str = ""
    actor: str = "anonymous"
    actor_org: str | None = None


@dataclass
class RequestAudit:
    """The audit state of one state-changing request, shared with every transaction it runs.

    ``success_status`` is what the request answers if it succeeds (its route's status): a
    record committed with the request's change is written before the answer is known.
    """

    entry: AuditEntry
    success_status: Callable[[], int]
    recorded: bool = False


CURRENT_REQUEST: ContextVar[RequestAudit | None] = ContextVar("fedpark_audit", default=None)


def describe(obj: str) -> None:
    """Name the object the current request creates (a new token's id) before it commits."""
    current = CURRENT_REQUEST.get()
    if current is not None:
        current.entry.object = obj


def _outcome(status_code: int) -> str:
    return "success" if status_code < 400 else "denied" if status_code < 500 else "error"


@dataclass
class ChainReport:
    ok: bool
    records: int
    head_seq: int
    head_hash: str
    problems: list[str] = field(default_factory=list)


def record_digest(key: bytes, fields: dict[str, object]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def _fields(record: AuditRecord) -> dict[str, object]:
    at: datetime = record.at
    return {
        "seq": record.seq,
        "at": at.isoformat(timespec="microseconds"),
        "request_id": record.request_id,
        "actor": record.actor,
        "actor_org": record.actor_org,
        "action": record.action,
        "object": record.object,
        "outcome": record.outcome,
        "status_code": record.status_code,
        "prev_hash": record.prev_hash,
    }


class AuditService:
    def __init__(self, catalog: Catalog, key: bytes, metrics: HubMetrics | None = None) -> None:
        self.catalog = catalog
        self._key = key
        self.metrics = metrics or HubMetrics()
        # One writer at a time inside this process; other processes (hub replicas on
        # PostgreSQL) are serialized by the primary key on ``seq`` and retry.
        self._lock = threading.Lock()

    def append(self, entry: AuditEntry, status_code: int) -> AuditRecord:
        """Write exactly one record in a transaction of its own (a request that changed
        nothing: refused, failed, or read-only); concurrent writers retry on the ``seq``
        clash."""
        for _ in range(_APPEND_ATTEMPTS):
            try:
                with self._lock, self.catalog.unit_of_work(bookkeeping=True) as uow:
                    record = self._append_in(uow, entry, status_code)
            except ConflictError:
                continue
            self.metrics.on_audit_record(record.outcome)  # counted once committed
            return record
        raise ConflictError("the audit log is too busy: could not append a record")

    def record_with_change(self, uow: UnitOfWork) -> Callable[[], None] | None:
        """The catalog's write hook: the current request's record, in the transaction that
        makes its change (so no change commits without its record, and no record without its
        change). Outside a request (the run supervisor), or once recorded: nothing."""
        current = CURRENT_REQUEST.get()
        if current is None or current.recorded:
            return None
        record = self._append_in(uow, current.entry, current.success_status())

        def committed() -> None:
            current.recorded = True
            self.metrics.on_audit_record(record.outcome)

        return committed

    def _append_in(self, uow: UnitOfWork, entry: AuditEntry, status_code: int) -> AuditRecord:
        uow.audit.lock_chain()
        head = uow.audit.head()
        record = AuditRecord(
            seq=(head.seq if head else 0) + 1,
            at=utcnow(),
            request_id=entry.request_id,
            actor=entry.actor,
            actor_org=entry.actor_org,
            action=entry.action,
            object=entry.object,
            outcome=_outcome(status_code),
            status_code=status_code,
            prev_hash=head.hash if head else GENESIS,
        )
        record.hash = record_digest(self._key, _fields(record))
        uow.audit.append(record)
        return record

    def newest(self, caller: Principal, limit: int) -> list[AuditRecord]:
        """The most recent records first, with the same visibility as :meth:`list`."""
        if caller.role is not Role.ADMIN:
            raise PermissionDeniedError("only admins read the audit log")
        org = None if caller.is_park_admin else caller.org_id
        with self.catalog.unit_of_work() as uow:
            return uow.audit.newest(limit=limit, org_id=org)

    def list(self, caller: Principal, *, after_seq: int, limit: int) -> list[AuditRecord]:
        """Park admins read the whole log; organization admins their organization's part."""
        if caller.role is not Role.ADMIN:
            raise PermissionDeniedError("only admins read the audit log")
        org = None if caller.is_park_admin else caller.org_id
        with self.catalog.unit_of_work() as uow:
            return uow.audit.list(after_seq=after_seq, limit=limit, org_id=org)

    def verify(self, max_problems: int = 20) -> ChainReport:
        """Walk the whole chain and report the first problems found."""
        problems: list[str] = []
        prev_hash, expected_seq, count = GENESIS, 1, 0
        with self.catalog.unit_of_work() as uow:
            for record in uow.audit.iter_all():
                count += 1
                if record.seq != expected_seq:
                    problems.append(
                        f"record {record.seq}: expected seq {expected_seq} "
                        "(records removed or reordered)"
                    )
                if record.prev_hash != prev_hash:
                    problems.append(f"record {record.seq}: does not link to the record before it")
                if not hmac.compare_digest(record_digest(self._key, _fields(record)), record.hash):
                    problems.append(f"record {record.seq}: content changed since it was written")
                prev_hash, expected_seq = record.hash, record.seq + 1
                if len(problems) >= max_problems:
                    break
            head = uow.audit.head()
            head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
            if len(problems) < max_problems and (head_seq, head_hash) != (
                expected_seq - 1,
                prev_hash,
            ):
                problems.append(
                    f"the chain ends at record {expected_seq - 1} but its head says {head_seq} "
                    "(records removed from the end)"
                )
        return ChainReport(not problems, count, head_seq, head_hash, problems)
