"""Runs survive their infrastructure: a hub restart and a 30 s storage outage in the middle of
a run lose no round's metrics, checkpoint or manifest entry, and a factory that drops out
comes back into the run (the ServerApp's reports wait for
the hub, the hub retries storage, and a retried report is recorded once)."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import pytest
from federation import (
    ParkSetup,
    launch_body,
    start_park,
    supernode_pid,
    wait_for_experiment,
)

from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration

ROUNDS = 4


def _launch(park: ParkSetup) -> str:
    launch = launch_body(park, "survives", ROUNDS)
    with park.hub.client(park.people["alice"].token) as client:
        experiment = str(client.post("/experiments", json=launch).json()["id"])
        deadline = time.monotonic() + 240
        while client.get(f"/experiments/{experiment}").json()["rounds_completed"] < 1:
            assert time.monotonic() < deadline, "no first round"
            time.sleep(1)
    return experiment


def _nothing_lost(park: ParkSetup, experiment: str) -> None:
    with park.hub.client(park.people["alice"].token) as client:
        state = wait_for_experiment(client, experiment, timeout=400)
        rounds = client.get(f"/experiments/{experiment}/rounds").json()
    assert state["status"] == "finished", state
    assert [r["round"] for r in rounds] == list(range(1, ROUNDS + 1))
    assert all(r["checkpoint_sha256"] and r["report"]["train_factories"] for r in rounds)
    with park.hub.client(park.people["buyer"].token) as buyer:
        manifest = buyer.get(f"/models/{experiment}/manifest").json()
        weights = buyer.get(f"/models/{experiment}/weights")  # read back and sha-checked
    assert [r["round"] for r in manifest["rounds"]] == list(range(1, ROUNDS + 1))
    assert weights.status_code == 200
    assert hashlib.sha256(weights.content).hexdigest() == manifest["weights"]["sha256"]


def test_storage_outage_of_30_s_during_a_run_loses_nothing(tmp_path: Path) -> None:
    with EmbeddedS3(tmp_path / "s3") as storage:
        park = start_park(tmp_path, storage, rows=600)
        try:
            experiment = _launch(park)
            port = storage.port
            storage.stop()  # round 2's checkpoint and report meet no storage
            time.sleep(30)
            storage.requested_port = port
            storage.start()
            _nothing_lost(park, experiment)
            # The outage was met: the hub answered 503 to some report, which was retried.
            assert f'{experiment}/rounds/2/checkpoint HTTP/1.1" 503' in park.hub.log.read_text()
        finally:
            park.stop()


def test_hub_restart_during_a_run_loses_nothing(s3_server: EmbeddedS3, tmp_path: Path) -> None:
    park = start_park(tmp_path, s3_server, rows=600)
    try:
        experiment = _launch(park)
        park.hub.stop()  # mid-run: round 2 ends (a round takes ~25 s) while the hub is away
        time.sleep(45)
        park.hub.start()
        _nothing_lost(park, experiment)
        log = park.hub.log.read_text()
        restarted = log.rindex("Started server process")
        assert log.index(f"/runs/{experiment}/rounds/2/checkpoint") > restarted
    finally:
        park.stop()


def test_a_factory_that_drops_mid_run_rejoins_it(s3_server: EmbeddedS3, tmp_path: Path) -> None:
    park = start_park(tmp_path, s3_server, rows=600)
    try:
        experiment = _launch(park)
        node = tmp_path / "acme" / "node"
        dead = supernode_pid(node)
        os.kill(dead, signal.SIGKILL)  # the plant's machine drops off mid-run
        back = supernode_pid(node, avoid=dead)  # `fedpark factory join` brings it back
        assert back != dead
        with park.hub.client(park.people["alice"].token) as client:
            state = wait_for_experiment(client, experiment, timeout=400)
            rounds = client.get(f"/experiments/{experiment}/rounds").json()
        assert state["status"] == "finished", state
        last = rounds[-1]["report"]["train_factories"]
        assert {f["org"] for f in last} == {"acme", "bravo"}  # acme trains again
    finally:
        park.stop()


def test_a_superlink_restart_mid_run_ends_it_clearly_and_keeps_its_rounds(
    s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    """Flower 1.41 keeps runs in its database across a restart, but the run's ServerApp dies
    with the SuperLink: the hub reports the run failed with Flower's reason (never hangs),
    and the rounds it finished keep their metrics and checkpoints."""
    park = start_park(tmp_path, s3_server, rows=600)
    try:
        experiment = _launch(park)
        park.federation.processes[0].stop()  # the SuperLink (its state is in a database)
        time.sleep(5)
        park.federation.start_superlink()
        with park.hub.client(park.people["alice"].token) as client:
            state = wait_for_experiment(client, experiment, timeout=300)
            rounds = client.get(f"/experiments/{experiment}/rounds").json()
        assert state["status"] == "failed" and state["error"], state
        assert rounds and all(r["checkpoint_sha256"] and r["report"] for r in rounds)
        assert state["rounds_completed"] == len(rounds) < ROUNDS
    finally:
        park.stop()
