"""The audit chain detects changed, removed and reordered records."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from fedpark.hub.services.audit import AuditEntry, AuditService
from fedpark.hub.storage import Catalog

KEY = b"k" * 32


@pytest.fixture
def audit(tmp_path: Path) -> AuditService:
    catalog = Catalog(f"sqlite:///{tmp_path / 'audit.db'}")
    catalog.migrate()
    service = AuditService(catalog, KEY)
    for i in range(6):
        service.append(AuditEntry(f"req-{i}", "org.create", f"organization:o{i}", "admin"), 201)
    return service


def _sql(service: AuditService, statement: str) -> None:
    with service.catalog.engine.begin() as connection:
        connection.execute(text(statement))


def test_intact_chain_verifies(audit: AuditService) -> None:
    report = audit.verify()
    assert report.ok and report.records == 6 and report.head_seq == 6
    assert report.problems == []


def test_outcomes_follow_the_status(audit: AuditService) -> None:
    assert audit.append(AuditEntry("r", "x"), 403).outcome == "denied"
    assert audit.append(AuditEntry("r", "x"), 500).outcome == "error"
    assert audit.append(AuditEntry("r", "x"), 200).outcome == "success"


def test_changed_record_is_detected(audit: AuditService) -> None:
    _sql(audit, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    report = audit.verify()
    assert not report.ok
    assert any("record 3: content changed" in p for p in report.problems)


def test_removed_record_is_detected(audit: AuditService) -> None:
    _sql(audit, "DELETE FROM audit_log WHERE seq = 4")
    report = audit.verify()
    assert not report.ok
    assert any("expected seq 4" in p for p in report.problems)


def test_reordered_records_are_detected(audit: AuditService) -> None:
    # Swap the contents of records 2 and 5 by renumbering them.
    _sql(audit, "UPDATE audit_log SET seq = 100 WHERE seq = 2")
    _sql(audit, "UPDATE audit_log SET seq = 2 WHERE seq = 5")
    _sql(audit, "UPDATE audit_log SET seq = 5 WHERE seq = 100")
    report = audit.verify()
    assert not report.ok
    assert any("does not link" in p for p in report.problems)


def test_removed_tail_is_detected(audit: AuditService) -> None:
    _sql(audit, "DELETE FROM audit_log WHERE seq = 6")
    report = audit.verify()
    assert not report.ok
    assert any("removed from the end" in p for p in report.problems)


def test_rebuilt_chain_without_the_key_is_detected(audit: AuditService) -> None:
    forger = AuditService(audit.catalog, b"x" * 32)
    forger.append(AuditEntry("forged", "token.create", "token:evil", "mallory"), 201)
    report = audit.verify()
    assert not report.ok and any("record 7: content changed" in p for p in report.problems)


def test_concurrent_appends_keep_one_contiguous_chain(audit: AuditService) -> None:
    def work(n: int) -> None:
        for i in range(10):
            audit.append(AuditEntry(f"t{n}-{i}", "x"), 200)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = audit.verify()
    assert report.ok, report.problems
    assert report.records == 6 + 40
