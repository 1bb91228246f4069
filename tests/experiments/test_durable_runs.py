"""Runs survive their infrastructure: a hub restart, a storage outage and a SuperLink
restart in the middle of a run lose no round's metrics, checkpoint or manifest entry, and a
factory that drops out comes back into the run (the ServerApp's reports wait for the hub, the
hub retries storage, a retried report is recorded once, and a run lost with its SuperLink is
resumed from its last checkpoint)."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from console import sign_in
from federation import (
    ParkSetup,
    launch_body,
    start_park,
    supernode_pid,
    wait_for_experiment,
)

from fedpark.hub.storage.embedded import EmbeddedS3

# A test here waits for its first round (240 s), then for its end (400 s): past pytest's
# 300 s default. A slow machine must reach these waits and fail with their message.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROUNDS = 4


def _launch(park: ParkSetup, **settings: Any) -> str:
    launch = launch_body(park, "survives", ROUNDS) | settings
    with park.hub.client(park.people["alice"].token) as client:
        experiment = str(client.post("/experiments", json=launch).json()["id"])
        deadline = time.monotonic() + 240
        while client.get(f"/experiments/{experiment}").json()["rounds_completed"] < 1:
            assert time.monotonic() < deadline, "no first round"
            time.sleep(1)
    return experiment


def _finished(park: ParkSetup, state: dict[str, Any]) -> None:
    """Assert the experiment finished; if not, say why (its error, its restarts and the hub's
    last warnings): a rare loss on a slow machine must be readable from CI's output."""
    if state["status"] != "finished":
        warnings = [line for line in park.hub.log.read_text().splitlines() if " WARNING " in line]
        pytest.fail(f"{state['status']}: {state['error']!r}, {state['restarts']}, {warnings[-15:]}")


def _nothing_lost(park: ParkSetup, experiment: str) -> None:
    with park.hub.client(park.people["alice"].token) as client:
        state = wait_for_experiment(client, experiment, timeout=400)
        rounds = client.get(f"/experiments/{experiment}/rounds").json()
    _finished(park, state)
    assert [r["round"] for r in rounds] == list(range(1, ROUNDS + 1))
    assert all(r["checkpoint_sha256"] and r["report"]["train_factories"] for r in rounds)
    with park.hub.client(park.people["buyer"].token) as buyer:
        manifest = buyer.get(f"/models/{experiment}/manifest").json()
        weights = buyer.get(f"/models/{experiment}/weights")  # read back and sha-checked
    assert [r["round"] for r in manifest["rounds"]] == list(range(1, ROUNDS + 1))
    assert weights.status_code == 200
    assert hashlib.sha256(weights.content).hexdigest() == manifest["weights"]["sha256"]


def test_a_storage_outage_during_a_run_loses_nothing(tmp_path: Path) -> None:
    with EmbeddedS3(tmp_path / "s3") as storage:
        park = start_park(tmp_path, storage, rows=600)
        try:
            experiment = _launch(park)
            port = storage.port
            storage.stop()  # the next round's checkpoint and report meet no storage
            # Storage stays away until a report has met the outage (the hub answered 503):
            # the overlap is waited for, not hoped for.
            met = f'/runs/{experiment}/rounds/2/checkpoint HTTP/1.1" 503'
            deadline = time.monotonic() + 300
            while met not in park.hub.log.read_text():
                assert time.monotonic() < deadline, "no report met the storage outage"
                time.sleep(0.5)
            storage.requested_port = port
            storage.start()
            _nothing_lost(park, experiment)
        finally:
            park.stop()


def test_hub_restart_during_a_run_loses_nothing(s3_server: EmbeddedS3, tmp_path: Path) -> None:
    park = start_park(tmp_path, s3_server, rows=600, report_proxy=True)
    assert park.report_proxy is not None
    try:
        experiment = _launch(park)
        park.hub.stop()  # mid-run
        # The hub stays away until the ServerApp has tried to report to it (through the
        # proxy, which counts the refused connections): the outage surely met a report.
        before = park.report_proxy.attempts_while_down
        deadline = time.monotonic() + 300
        while park.report_proxy.attempts_while_down == before:
            assert time.monotonic() < deadline, "the ServerApp never tried the missing hub"
            time.sleep(0.2)
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
        # k = 2 of 2: the round acme misses aggregates nothing; the experiment allows that.
        experiment = _launch(park, rounds_below_k=3)
        node = tmp_path / "acme" / "node"
        dead = supernode_pid(node)
        os.kill(dead, signal.SIGKILL)  # the plant's machine drops off mid-run
        back = supernode_pid(node, avoid=dead)  # `fedpark factory join` brings it back
        assert back != dead
        with park.hub.client(park.people["alice"].token) as client:
            state = wait_for_experiment(client, experiment, timeout=400)
            rounds = client.get(f"/experiments/{experiment}/rounds").json()
        _finished(park, state)
        last = rounds[-1]["report"]["train_factories"]
        assert {f["org"] for f in last} == {"acme", "bravo"}  # acme trains again
        for r in rounds:  # no aggregate of fewer than k = 2 factories, ever
            report = r["report"]
            assert report["aggregated"] == (report["contributors"] == ["acme", "bravo"]), report
    finally:
        park.stop()


def _restart_superlink(park: ParkSetup) -> None:
    park.federation.processes[0].stop()  # the SuperLink (its state is in a database)
    time.sleep(5)
    park.federation.start_superlink()


def test_a_superlink_restart_mid_run_resumes_it_from_the_last_checkpoint(
    s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    """Flower 1.41's ServerApp dies with its SuperLink and Flower marks the run failed; the
    hub tells that loss from a failure of the run itself and starts a continuation from the
    last complete round's checkpoint: same experiment, every round once, the restart in the
    signed manifest."""
    park = start_park(tmp_path, s3_server, rows=600)
    try:
        experiment = _launch(park)
        with park.hub.client(park.people["alice"].token) as client:
            first_run = client.get(f"/experiments/{experiment}").json()["flower_run_id"]
            before = {r["round"]: r["checkpoint_sha256"] for r in _rounds(client, experiment)}
        _restart_superlink(park)
        _nothing_lost(park, experiment)
        with park.hub.client(park.people["alice"].token) as client:
            state = client.get(f"/experiments/{experiment}").json()
            after = {r["round"]: r["checkpoint_sha256"] for r in _rounds(client, experiment)}
        [restart] = state["restarts"]
        assert restart["flower_run_id"] == first_run != state["flower_run_id"]
        assert 1 <= restart["from_round"] < ROUNDS and restart["reason"]
        # The rounds finished before the loss are kept as they were, not trained again.
        assert before and max(before) <= restart["from_round"]
        assert all(after[n] == sha for n, sha in before.items())
        with park.hub.client(park.people["buyer"].token) as buyer:
            manifest = buyer.get(f"/models/{experiment}/manifest").json()
        assert [r["from_round"] for r in manifest["restarts"]] == [restart["from_round"]]
        assert manifest["summary"]["resumed_from_round"] == restart["from_round"]
        assert "resumed from round" in park.hub.log.read_text()
        console, _ = sign_in(park.hub.url, park.people["alice"].token)
        page = console.get(f"/console/experiments/{experiment}").text
        console.close()
        assert f"Resumed from round {restart['from_round']}'s checkpoint" in page
    finally:
        park.stop()


def _rounds(client: httpx.Client, experiment: str) -> list[dict[str, Any]]:
    rounds: list[dict[str, Any]] = client.get(f"/experiments/{experiment}/rounds").json()
    return [r for r in rounds if r["report"]]


def test_a_run_lost_with_no_restarts_left_ends_clearly_and_keeps_its_rounds(
    s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    """With ``FEDPARK_RUN_RESTARTS=0`` a lost run is not resumed: the hub reports it failed
    with Flower's reason (never hangs), and the rounds it finished keep their metrics and
    checkpoints."""
    park = start_park(tmp_path, s3_server, rows=600, hub_settings={"FEDPARK_RUN_RESTARTS": "0"})
    try:
        experiment = _launch(park)
        _restart_superlink(park)
        with park.hub.client(park.people["alice"].token) as client:
            state = wait_for_experiment(client, experiment, timeout=300)
            rounds = client.get(f"/experiments/{experiment}/rounds").json()
        assert state["status"] == "failed", state
        assert "not resumed: 0 of 0 restarts used" in state["error"]
        assert state["restarts"] == []
        assert rounds and all(r["checkpoint_sha256"] and r["report"] for r in rounds)
        assert state["rounds_completed"] == len(rounds) < ROUNDS
    finally:
        park.stop()
