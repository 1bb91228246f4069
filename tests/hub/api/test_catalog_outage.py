"""A PostgreSQL restart under load: every answer is a success or a 503 with Retry-After (never
a 500, never a reset connection), nothing answered is lost, and the hub reconnects by itself."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from harness import HubProcess, add_member, add_org, hub_env, new_contract
from postgres import REQUIRED_ENV, PostgresCluster

from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration

CLIENTS = 6


def test_a_catalog_restart_under_load_answers_503_never_500(
    s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    cluster = PostgresCluster.create()  # a server of its own: this test restarts it
    if cluster is None:
        if os.environ.get(REQUIRED_ENV):
            pytest.fail("PostgreSQL server binaries are missing")
        pytest.skip("PostgreSQL server binaries are missing: apt-get install postgresql")
    try:
        cluster.start()
        env = hub_env(s3_server, FEDPARK_DATABASE_URL=cluster.new_database())
        hub = HubProcess(tmp_path / "hub", env).start()
        try:
            with hub.client(hub.admin_token) as admin:
                add_org(admin, "acme")
                author = add_member(admin, "acme-author", "acme", "factory")
            statuses: Counter[str] = Counter()
            created: list[str] = []
            stop = threading.Event()
            lock = threading.Lock()

            def load() -> None:
                with hub.client(author.token) as client:
                    while not stop.is_set():
                        data = new_contract("acme")
                        for method, path, body in (
                            ("GET", "/me", None),
                            ("POST", "/contracts", data),
                        ):
                            try:
                                answer = client.request(method, path, json=body)
                            except httpx.TransportError as exc:
                                key = f"{type(exc).__name__}"
                            else:
                                key = str(answer.status_code)
                                if answer.status_code == 503:
                                    assert answer.headers["retry-after"].isdigit()
                                if method == "POST" and answer.status_code == 201:
                                    with lock:
                                        created.append(data["id"])
                            with lock:
                                statuses[key] += 1

            threads = [threading.Thread(target=load) for _ in range(CLIENTS)]
            for thread in threads:
                thread.start()
            time.sleep(2)
            cluster.stop("fast")  # a restart: every connection in the pool is cut
            time.sleep(3)
            cluster.start()
            time.sleep(4)
            stop.set()
            for thread in threads:
                thread.join(60)
            with hub.client(author.token) as client:
                after = client.get("/me").status_code
                listed = client.get("/contracts", params={"owner": "acme", "limit": 500}).json()
        finally:
            hub.stop()
    finally:
        cluster.remove()

    print(f"answers during a catalog restart: {dict(statuses)}")
    assert set(statuses) <= {"200", "201", "503"}, statuses  # no 500, no reset
    assert statuses["503"] > 0  # the outage was met
    assert after == 200  # reconnected
    assert set(created) <= {c["contract_id"] for c in listed}  # nothing answered was lost
