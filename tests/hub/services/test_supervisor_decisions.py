"""The run supervisor's decisions, in process: real SQLite, the session's real S3, and a fake
of Flower's Control API (:mod:`fakeflower`) that says what became of each run.

Which lost runs are resumed, from which round and with which token; when it gives up; what it
does with a damaged spec or an experiment stopped meanwhile. The same supervisor against a
real SuperLink is ``test_supervisor.py`` (integration).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakeflower import FakeFlowerControl
from watched import (
    HUB_URL,
    LOST_RUN,
    OLD_TOKEN,
    SPEC,
    new_storage,
    open_experiment,
    row_of,
)

from fedpark.experiments.protocol import HubOutput
from fedpark.experiments.protocol.resources.experiments import Restart
from fedpark.hub.lifecycle import ExperimentStatus
from fedpark.hub.services.experiments import set_status
from fedpark.hub.services.supervisor import RunSupervisor
from fedpark.hub.services.tokens import hash_token
from fedpark.hub.storage import Storage
from fedpark.hub.storage.models import utcnow
from fedpark.hub.storage.objects import ObjectStore


@pytest.fixture
def storage(tmp_path: Path, object_store: ObjectStore) -> Storage:
    return new_storage(tmp_path, object_store)


@pytest.fixture
def flower() -> FakeFlowerControl:
    fake = FakeFlowerControl()
    fake.seed_run(LOST_RUN)  # the experiments' run, running until a test says otherwise
    return fake


def _supervisor(storage: Storage, flower: FakeFlowerControl, max_restarts: int) -> RunSupervisor:
    return RunSupervisor(storage, flower, HUB_URL, max_restarts=max_restarts)


@pytest.mark.parametrize("loss", ["failed", "lost"])
def test_a_run_flower_ends_while_its_experiment_is_open_resumes_from_the_last_complete_round(
    storage: Storage, flower: FakeFlowerControl, loss: str
) -> None:
    experiment = open_experiment(storage, complete=2, partial=True)
    if loss == "failed":
        flower.finish(LOST_RUN, "failed", "the ServerApp process exited")
    else:
        flower.lose(LOST_RUN)
    _supervisor(storage, flower, max_restarts=3).watch()

    [spec] = flower.started
    row = row_of(storage, experiment)
    assert row.status == "running" and row.error is None
    # A continuation from round 2 (round 3 had no report: trained again), the same spec.
    assert spec.start_round == 2 and row.rounds_completed == 2
    assert spec.model_dump(mode="json", exclude={"output", "start_round"}) == {
        k: v for k, v in SPEC.items() if k != "start_round"
    }
    with storage.unit_of_work() as uow:
        assert [r.round for r in uow.experiments.rounds(experiment)] == [1, 2]
    [restart] = row.restarts
    assert restart.from_round == 2 and restart.flower_run_id == str(LOST_RUN)
    reason = {"failed": "the ServerApp process exited", "lost": "has no run 12345"}[loss]
    assert reason in restart.reason
    # A fresh token: the run reports with it, the old one no longer matches the experiment.
    assert isinstance(spec.output, HubOutput) and spec.output.hub_url == HUB_URL
    token = spec.output.run_token
    assert token not in (OLD_TOKEN + experiment, "fprun_launch")
    assert row.run_token_hash == hash_token(token)
    [new_run] = [r.run_id for r in flower.runs.values() if r.spec is spec]
    assert row.flower_run_id == str(new_run) != str(LOST_RUN)
    assert row.run_spec == SPEC  # the stored spec never holds a token


def test_a_run_is_resumed_while_restarts_are_left_and_fails_once_they_are_used(
    storage: Storage, flower: FakeFlowerControl
) -> None:
    earlier = [Restart(at=utcnow(), from_round=1, reason="x", flower_run_id="1")]
    experiment = open_experiment(storage, complete=1, partial=False, restarts=earlier)
    flower.finish(LOST_RUN, "failed", "lost again")
    _supervisor(storage, flower, max_restarts=1).watch()  # FEDPARK_RUN_RESTARTS=1: used

    row = row_of(storage, experiment)
    assert row.status == "failed" and row.ended_at is not None
    assert row.error == "lost again (not resumed: 1 of 1 restarts used)"
    assert row.flower_run_id == str(LOST_RUN) and len(row.restarts) == 1
    assert flower.calls_to("start_run") == []

    resumable = open_experiment(storage, complete=1, partial=False, restarts=earlier)
    _supervisor(storage, flower, max_restarts=2).watch()  # one of two used: one more
    assert row_of(storage, resumable).status == "running"
    assert len(row_of(storage, resumable).restarts) == 2 and len(flower.started) == 1


def test_a_damaged_stored_spec_is_not_resumed_but_failed_with_the_reason(
    storage: Storage, flower: FakeFlowerControl
) -> None:
    damaged = open_experiment(storage, complete=1, partial=False, run_spec={"rounds": "many"})
    fine = open_experiment(storage, complete=1, partial=False)
    flower.finish(LOST_RUN, "failed", "lost")
    _supervisor(storage, flower, max_restarts=3).watch()

    row = row_of(storage, damaged)
    assert row.status == "failed"
    assert row.error == "lost (not resumed: its stored run spec is unreadable)"
    assert row.restarts == [] and row.flower_run_id == str(LOST_RUN)
    # The others are still watched: one run started, for the sound experiment only.
    assert len(flower.started) == 1
    resumed = row_of(storage, fine)
    assert resumed.status == "running" and len(resumed.restarts) == 1


def test_an_experiment_stopped_while_its_run_resumes_stays_stopped_and_the_new_run_is_stopped(
    storage: Storage, flower: FakeFlowerControl
) -> None:
    experiment = open_experiment(storage, complete=1, partial=False)
    flower.finish(LOST_RUN, "failed", "lost")

    def researcher_stops(run_id: int) -> None:  # between the new run's start and its record
        set_status(storage, experiment, ExperimentStatus.STOPPED, "stopped by alice")

    flower.on_start = researcher_stops
    _supervisor(storage, flower, max_restarts=3).watch()

    [new_run] = [r.run_id for r in flower.runs.values() if r.spec is not None]
    assert flower.calls_to("stop") == [(new_run,)]  # the continuation, never the lost run
    assert flower.runs[new_run].status.sub_status == "stopped"
    row = row_of(storage, experiment)
    assert row.status == "stopped" and row.error == "stopped by alice"
    assert row.flower_run_id == str(LOST_RUN) and row.restarts == []
    assert row.run_token_hash == hash_token(OLD_TOKEN + experiment)


def test_a_superlink_still_coming_back_is_tried_again_on_the_next_pass(
    storage: Storage, flower: FakeFlowerControl
) -> None:
    experiment = open_experiment(storage, complete=1, partial=False)
    flower.lose(LOST_RUN)
    flower.unavailable = {"start_run"}
    supervisor = _supervisor(storage, flower, max_restarts=3)
    supervisor.watch()
    row = row_of(storage, experiment)
    assert row.status == "running" and row.restarts == [] and row.flower_run_id == str(LOST_RUN)

    flower.unavailable = set()
    supervisor.watch()
    assert len(row_of(storage, experiment).restarts) == 1 and len(flower.started) == 1


def test_flower_states_move_the_experiment_stopped_and_pending_to_running(
    storage: Storage, flower: FakeFlowerControl
) -> None:
    pending = open_experiment(storage, complete=0, partial=False, status="pending")
    supervisor = _supervisor(storage, flower, max_restarts=3)
    supervisor.watch()  # LOST_RUN is running in Flower
    assert row_of(storage, pending).status == "running"

    flower.finish(LOST_RUN, "stopped")
    supervisor.watch()
    row = row_of(storage, pending)
    assert row.status == "stopped" and row.error == "stopped in Flower"
    assert flower.calls_to("start_run") == []


def test_closed_experiments_are_not_asked_about(
    storage: Storage, flower: FakeFlowerControl
) -> None:
    experiment = open_experiment(storage, complete=1, partial=False, status="finished")
    flower.lose(LOST_RUN)
    _supervisor(storage, flower, max_restarts=3).watch()

    assert flower.calls == []
    assert row_of(storage, experiment).status == "finished"
