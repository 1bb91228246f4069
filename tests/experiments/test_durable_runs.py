"""A hub restart in the middle of a run: the hub reattaches, the run goes on, and no round's
metrics or checkpoint is lost (the ServerApp's reports wait for the hub, and a retried report
is recorded once)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from federation import start_park, wait_for_experiment

from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration

ROUNDS = 4


def test_hub_restart_during_a_run_loses_nothing(s3_server: EmbeddedS3, tmp_path: Path) -> None:
    park = start_park(tmp_path, s3_server, rows=600)
    try:
        launch = {
            "name": "survives a restart",
            "contract_id": park.contract["id"],
            "contract_version": park.contract["version"],
            "participants": ["acme", "bravo"],
            "model": {"kind": "mlp", "hidden": [16]},
            "rounds": ROUNDS,
            "min_factories": 2,
            "round_timeout": 120,
        }
        alice = park.people["alice"].token
        with park.hub.client(alice) as client:
            experiment = client.post("/experiments", json=launch).json()["id"]
            deadline = time.monotonic() + 240
            while client.get(f"/experiments/{experiment}").json()["rounds_completed"] < 1:
                assert time.monotonic() < deadline, "no first round"
                time.sleep(1)
        park.hub.stop()  # mid-run: round 2 ends (a round takes ~25 s) while the hub is away
        time.sleep(45)
        park.hub.start()
        with park.hub.client(alice) as client:
            state = wait_for_experiment(client, experiment, timeout=400)
            rounds = client.get(f"/experiments/{experiment}/rounds").json()
        assert state["status"] == "finished", state
        log = park.hub.log.read_text()
        restarted = log.rindex("Started server process")
        assert log.index(f"/runs/{experiment}/rounds/2/checkpoint") > restarted
        assert [r["round"] for r in rounds] == list(range(1, ROUNDS + 1))
        assert all(r["checkpoint_sha256"] and r["report"]["train_factories"] for r in rounds)
        with park.hub.client(park.people["buyer"].token) as buyer:
            manifest = buyer.get(f"/models/{experiment}/manifest").json()
        assert [r["round"] for r in manifest["rounds"]] == list(range(1, ROUNDS + 1))
    finally:
        park.stop()
