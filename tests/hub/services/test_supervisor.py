"""The run supervisor against a real SuperLink and real storage: which lost runs it resumes,
from which round, and when it gives up.

The SuperLink here has no SuperNodes and no record of the experiments' runs, as after a
SuperLink that lost its state: every run the catalog names is unknown to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from federation import Federation
from watched import LOST_RUN, OLD_TOKEN, SPEC, new_storage, open_experiment, row_of

from fedpark.experiments.protocol.resources.experiments import Restart
from fedpark.hub.errors import AuthenticationError, FlowerUnavailableError
from fedpark.hub.flower.control import FlowerControl
from fedpark.hub.services.keys import HubKey
from fedpark.hub.services.runs import RunReportService
from fedpark.hub.services.supervisor import RunSupervisor
from fedpark.hub.storage import Storage
from fedpark.hub.storage.models import utcnow
from fedpark.hub.storage.objects import ObjectStore

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def superlink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowerControl]:
    federation = Federation(tmp_path_factory.mktemp("flwr")).start_superlink()
    control = FlowerControl(f"127.0.0.1:{federation.port}")
    deadline = time.monotonic() + 60
    while True:  # until the SuperLink answers
        try:
            control.status(1)
            break
        except FlowerUnavailableError:
            assert time.monotonic() < deadline, "the SuperLink did not start"
            time.sleep(0.5)
    yield control
    federation.stop()


@pytest.fixture
def storage(tmp_path: Path, object_store: ObjectStore) -> Storage:
    return new_storage(tmp_path, object_store)


def test_a_lost_run_continues_from_its_last_complete_round(
    storage: Storage, superlink: FlowerControl, tmp_path: Path
) -> None:
    experiment = open_experiment(storage, complete=2, partial=True)
    RunSupervisor(storage, superlink, "http://hub", max_restarts=3).watch()

    row = row_of(storage, experiment)
    assert row.status == "running" and row.error is None
    [restart] = row.restarts
    assert restart.from_round == 2 and restart.flower_run_id == str(LOST_RUN)
    assert "has no run 12345" in restart.reason
    assert row.rounds_completed == 2
    with storage.unit_of_work() as uow:  # round 3 lost its report: it is trained again
        assert [r.round for r in uow.experiments.rounds(experiment)] == [1, 2]
    # The continuation is a new Flower run, started with the same spec from round 2.
    assert row.flower_run_id not in (None, str(LOST_RUN))
    assert superlink.status(int(row.flower_run_id)).status != "unknown"
    superlink.stop(int(row.flower_run_id))
    # The lost run's token no longer reports into the experiment; checkpoints stay readable.
    service = RunReportService(storage, HubKey.load_or_create(tmp_path / "key.pem"), "http://hub")
    with pytest.raises(AuthenticationError):
        service.authenticate_run(experiment, OLD_TOKEN + experiment)
    copy = service.checkpoint_file(row, 2)
    assert copy.read_bytes() == b"w2"
    copy.unlink()
    assert row.run_spec == SPEC  # the stored spec never holds a token


def test_a_run_lost_too_often_fails_with_the_reason(
    storage: Storage, superlink: FlowerControl
) -> None:
    earlier = [Restart(at=utcnow(), from_round=1, reason="x", flower_run_id="1")]
    experiment = open_experiment(storage, complete=1, partial=False, restarts=earlier)
    RunSupervisor(storage, superlink, "http://hub", max_restarts=1).watch()

    row = row_of(storage, experiment)
    assert row.status == "failed" and row.ended_at is not None
    assert row.error is not None and "has no run 12345" in row.error
    assert "not resumed: 1 of 1 restarts used" in row.error
    assert row.flower_run_id == str(LOST_RUN) and len(row.restarts) == 1


def test_a_run_from_before_resumable_runs_fails_as_before(
    storage: Storage, superlink: FlowerControl
) -> None:
    experiment = open_experiment(storage, complete=1, partial=False, run_spec=None)
    RunSupervisor(storage, superlink, "http://hub", max_restarts=3).watch()

    row = row_of(storage, experiment)
    assert row.status == "failed" and row.error == "the SuperLink has no run 12345"
    assert row.restarts == []


def test_closed_experiments_are_left_alone(storage: Storage, superlink: FlowerControl) -> None:
    experiment = open_experiment(storage, complete=1, partial=False, status="finished")
    RunSupervisor(storage, superlink, "http://hub", max_restarts=3).watch()

    row = row_of(storage, experiment)
    assert row.status == "finished" and row.flower_run_id == str(LOST_RUN)


def test_a_damaged_run_spec_fails_its_experiment_and_spares_the_others(
    storage: Storage, superlink: FlowerControl
) -> None:
    damaged = open_experiment(storage, complete=1, partial=False, run_spec={"rounds": "many"})
    fine = open_experiment(storage, complete=1, partial=False)
    RunSupervisor(storage, superlink, "http://hub", max_restarts=3).watch()

    row = row_of(storage, damaged)
    assert row.status == "failed" and row.error is not None
    assert "its stored run spec is unreadable" in row.error and "many" not in row.error
    resumed = row_of(storage, fine)
    assert resumed.status == "running" and resumed.flower_run_id not in (None, str(LOST_RUN))
    superlink.stop(int(resumed.flower_run_id or 0))
