"""A factory that dies mid-run: the run never hangs; it fails with a clear status."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from federation import start_park, wait_for_experiment

from fedpark.hub.storage.embedded import EmbeddedS3

# Under two xdist workers on a slow machine a park test takes up to ~2x its time alone.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_run_with_too_few_factories_left_fails_clearly(
    s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    park = start_park(tmp_path, s3_server, rows=600)
    contract = park.contract
    try:
        launch = {
            "name": "doomed",
            "contract_id": contract["id"],
            "contract_version": contract["version"],
            "participants": ["acme", "bravo"],
            "model": {"kind": "mlp", "hidden": [8]},
            "rounds": 20,
            "min_factories": 2,
            # Rounds short of k are allowed here: this test is about the hub noticing that
            # too few factories are left at all (Flower then waits without limit).
            "rounds_below_k": 20,
            "round_timeout": 10,
        }
        with park.hub.client(park.people["alice"].token) as alice:
            experiment = alice.post("/experiments", json=launch).json()["id"]
            deadline = time.monotonic() + 120
            while not alice.get(f"/experiments/{experiment}/rounds").json():
                assert time.monotonic() < deadline, "no round finished"
                time.sleep(1)
            # Bravo leaves for good: `factory join` stops and takes its SuperNode with it.
            park.joins["bravo"].stop()
            # The hub's limit (three round timeouts and a margin) decides when; the deadline
            # here only keeps a broken build from hanging the suite.
            state = wait_for_experiment(alice, experiment, timeout=240)
        assert state["status"] == "failed", state
        assert "fewer than 2 factories are reachable" in state["error"]
        assert "(limit 60s: three round timeouts)" in state["error"]  # the stall rule, not luck
        assert state["rounds_completed"] < 20
    finally:
        park.stop()
