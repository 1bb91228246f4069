"""Two hub processes on one catalog, as replicas behind a load balancer, writing at once: the
audit chain stays one unbroken chain, and every change made through either has its record.
(One process's lock cannot serialize another's: only the catalog's chain lock can.)"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import pytest
from harness import HubProcess, add_member, add_org, hub_env

from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration

WRITES_PER_CLIENT = 12


def test_replicas_writing_at_once_keep_one_chain_and_every_record(
    s3_server: EmbeddedS3, tmp_path: Path, database: dict[str, str]
) -> None:
    shared = {
        "FEDPARK_DATABASE_URL": database.get("FEDPARK_DATABASE_URL")
        or f"sqlite:///{tmp_path / 'shared-catalog.db'}",
        "FEDPARK_AUDIT_KEY": secrets.token_hex(32),  # replicas share the chain's key
    }
    env = hub_env(s3_server, **shared)
    first = HubProcess(tmp_path / "one", env).start()
    second = HubProcess(tmp_path / "two", env).start()  # same buckets, same catalog
    try:
        admin_token = first.admin_token  # bootstrapped once, in the shared catalog
        with first.client(admin_token) as admin:
            add_org(admin, "acme")
            target = add_member(admin, "acme-op", "acme", "researcher")
        made: list[str] = []
        lock = threading.Lock()

        def write(hub: HubProcess) -> None:
            with hub.client(admin_token) as client:
                for _ in range(WRITES_PER_CLIENT):
                    answer = client.post("/tokens", json={"name": "r", "user_id": target.user_id})
                    assert answer.status_code == 201, answer.text
                    with lock:
                        made.append(answer.json()["id"])

        threads = [threading.Thread(target=write, args=(hub,)) for hub in (first, second) * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with second.client(admin_token) as admin:
            chain = admin.get("/audit/verify").json()
            records: list[dict[str, object]] = []
            after = 0
            while page := admin.get("/audit", params={"after_seq": after, "limit": 1000}).json():
                records += page
                after = int(page[-1]["seq"])  # type: ignore[call-overload]
    finally:
        second.stop()
        first.stop()
    assert len(made) == 8 * WRITES_PER_CLIENT
    assert chain["ok"], chain
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    recorded = {r["object"] for r in records if r["action"] == "token.create"}
    assert {f"token:{t}" for t in made} <= recorded
