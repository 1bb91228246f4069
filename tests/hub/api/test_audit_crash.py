"""No change without its audit record, even when the hub is killed mid-write: eight clients
create contract drafts and tokens as fast as they can, the hub gets SIGKILL in the middle of
the burst, and after a restart every contract and token in the catalog has its record (the
record commits in the same transaction as the change) and the chain verifies."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from harness import HubProcess, add_member, add_org, hub_env, new_contract

from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration

CLIENTS = 8


def _burst(
    hub: HubProcess,
    factory: str,
    admin: str,
    user_id: str,
    stop: threading.Event,
    answered: threading.Semaphore,
) -> int:
    sent = 0
    with hub.client(factory) as author, hub.client(admin) as issuer:
        while not stop.is_set():
            try:
                author.post("/contracts", json=new_contract("acme"))
                issuer.post("/tokens", json={"name": "burst", "user_id": user_id})
            except httpx.HTTPError:
                return sent  # the hub is gone
            sent += 2
            answered.release()
    return sent


def test_sigkill_mid_burst_leaves_no_change_without_its_record(
    s3_server: EmbeddedS3, tmp_path: Path, database: dict[str, str]
) -> None:
    hub = HubProcess(tmp_path / "hub", hub_env(s3_server, **database)).start()
    try:
        with hub.client(hub.admin_token) as admin:
            add_org(admin, "acme")
            factory = add_member(admin, "acme-author", "acme", "factory")
            target = add_member(admin, "acme-op", "acme", "researcher")
        stop = threading.Event()
        answered = threading.Semaphore(0)
        counts: list[int] = []
        threads = [
            threading.Thread(
                target=lambda: counts.append(
                    _burst(hub, factory.token, hub.admin_token, target.user_id, stop, answered)
                )
            )
            for _ in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        # Well into the burst, however busy the machine: 3 answered pairs per client first.
        deadline = time.monotonic() + 120
        for _ in range(3 * CLIENTS):
            assert answered.acquire(timeout=max(0.0, deadline - time.monotonic()))
        assert hub.process is not None and hub.process.process is not None
        hub.process.process.send_signal(signal.SIGKILL)
        stop.set()
        for thread in threads:
            thread.join(30)
        hub.start()  # the same data folder, catalog and key

        with hub.client(hub.admin_token) as admin:
            contracts = admin.get("/contracts", params={"limit": 500}).json()
            tokens = admin.get("/tokens", params={"user_id": target.user_id, "limit": 500}).json()
            records: list[dict[str, object]] = []
            while page := admin.get(
                "/audit", params={"after_seq": len(records), "limit": 1000}
            ).json():
                records += page
            chain = admin.get("/audit/verify").json()
    finally:
        hub.stop()

    assert sum(counts) > 20, counts  # the burst really ran
    assert len(contracts) > 5 and len(tokens) > 5, (len(contracts), len(tokens))
    recorded = {(r["action"], r["object"]) for r in records if r["outcome"] == "success"}
    missing = [
        c["contract_id"]
        for c in contracts
        if ("contract.create", f"contract:{c['contract_id']}@{c['version']}") not in recorded
    ] + [t["id"] for t in tokens if ("token.create", f"token:{t['id']}") not in recorded]
    assert missing == [], f"{len(missing)} changes without a record: {missing[:5]}"
    assert chain["ok"], chain
    print(f"{len(contracts)} contracts, {len(tokens)} tokens, {len(records)} records: all paired")
