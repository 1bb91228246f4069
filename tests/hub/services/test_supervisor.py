"""The run supervisor against a real SuperLink and real storage: which lost runs it resumes,
from which round, and when it gives up.

The SuperLink here has no SuperNodes and no record of the experiments' runs, as after a
SuperLink that lost its state: every run the catalog names is unknown to it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from federation import Federation
from samples import contract_data

from fedpark.experiments.protocol import HubOutput, RoundReport, RunSpec
from fedpark.experiments.protocol.resources.experiments import ExperimentCreate, Restart
from fedpark.hub.errors import AuthenticationError, FlowerUnavailableError
from fedpark.hub.flower.control import FlowerControl
from fedpark.hub.services.keys import HubKey
from fedpark.hub.services.runs import RunReportService
from fedpark.hub.services.supervisor import RunSupervisor
from fedpark.hub.services.tokens import hash_token
from fedpark.hub.storage import Catalog, Storage
from fedpark.hub.storage.models import Experiment, ExperimentRound, Organization, utcnow
from fedpark.hub.storage.objects import ObjectStore

pytestmark = pytest.mark.integration

LOST_RUN = "12345"
OLD_TOKEN = "fprun_old"
# Not a runnable spec: the continuation's ServerApp exits at once (no hub to report to here).
# The spec as a launch keeps it: everything but where to report (the run token).
SPEC = RunSpec(
    experiment_id="exp-x",
    contract=contract_data(),
    contract_sha256="0" * 64,
    rounds=5,
    output=HubOutput(hub_url="http://hub", run_token="fprun_launch"),
).without_secrets()


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
    [bucket] = object_store.buckets
    buckets = {"models": bucket, "contracts": bucket}
    storage = Storage(Catalog(f"sqlite:///{tmp_path / 'catalog.db'}"), object_store, buckets)
    storage.catalog.migrate()
    with storage.unit_of_work() as uow:
        uow.orgs.add(Organization(id="tu", name="TU", kind="university"))
    return storage


def _experiment(storage: Storage, *, complete: int, partial: bool, **extra: object) -> str:
    """An open experiment with ``complete`` recorded rounds and maybe one cut off mid-report."""
    experiment_id = f"exp-{uuid.uuid4().hex[:12]}"
    row = Experiment(
        id=experiment_id,
        name="lost",
        contract_id="c",
        contract_version="1.0.0",
        contract_sha256="0" * 64,
        org_id="tu",
        created_by="alice",
        status="running",
        settings=ExperimentCreate(
            name="lost",
            contract_id="cc",
            contract_version="1.0.0",
            participants=["a", "b"],
            round_timeout=600,
            min_factories=2,
            rounds=5,
        ),
        participants=[],
        flower_run_id=LOST_RUN,
        run_token_hash=hash_token(OLD_TOKEN + experiment_id),
        rounds_completed=complete,
        run_spec=SPEC,
        started_at=utcnow(),
    )
    for key, value in extra.items():
        setattr(row, key, value)
    bucket = storage.buckets["models"]
    with storage.unit_of_work() as uow:
        uow.experiments.add(row)
        for number in range(1, complete + 1 + partial):
            stored = storage.objects.put_bytes(bucket, f"{experiment_id}/{number}", b"w%d" % number)
            uow.experiments.add_round(
                ExperimentRound(
                    experiment_id=experiment_id,
                    round=number,
                    report=None if number > complete else RoundReport(round=number),
                    checkpoint_key=stored.key,
                    checkpoint_sha256=stored.sha256,
                    checkpoint_version_id=stored.version_id,
                )
            )
    return experiment_id


def _row(storage: Storage, experiment_id: str) -> Experiment:
    with storage.unit_of_work() as uow:
        row = uow.experiments.get(experiment_id)
        assert row is not None
        return row


def test_a_lost_run_continues_from_its_last_complete_round(
    storage: Storage, superlink: FlowerControl, tmp_path: Path
) -> None:
    experiment = _experiment(storage, complete=2, partial=True)
    RunSupervisor(storage, superlink, "http://hub", max_restarts=3).watch()

    row = _row(storage, experiment)
    assert row.status == "running" and row.error is None
    [restart] = row.restarts
    assert restart.from_round == 2 and restart.flower_run_id == LOST_RUN
    assert "has no run 12345" in restart.reason
    assert row.rounds_completed == 2
    with storage.unit_of_work() as uow:  # round 3 lost its report: it is trained again
        assert [r.round for r in uow.experiments.rounds(experiment)] == [1, 2]
    # The continuation is a new Flower run, started with the same spec from round 2.
    assert row.flower_run_id not in (None, LOST_RUN)
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
    experiment = _experiment(storage, complete=1, partial=False, restarts=earlier)
    RunSupervisor(storage, superlink, "http://hub", max_restarts=1).watch()

    row = _row(storage, experiment)
    assert row.status == "failed" and row.ended_at is not None
    assert row.error is not None and "has no run 12345" in row.error
    assert "not resumed: 1 of 1 restarts used" in row.error
    assert row.flower_run_id == LOST_RUN and len(row.restarts) == 1


def test_a_run_from_before_resumable_runs_fails_as_before(
    storage: Storage, superlink: FlowerControl
) -> None:
    experiment = _experiment(storage, complete=1, partial=False, run_spec=None)
    RunSupervisor(storage, superlink, "http://hub", max_restarts=3).watch()

    row = _row(storage, experiment)
    assert row.status == "failed" and row.error == "the SuperLink has no run 12345"
    assert row.restarts == []


def test_closed_experiments_are_left_alone(storage: Storage, superlink: FlowerControl) -> None:
    experiment = _experiment(storage, complete=1, partial=False, status="finished")
    RunSupervisor(storage, superlink, "http://hub", max_restarts=3).watch()

    row = _row(storage, experiment)
    assert row.status == "finished" and row.flower_run_id == LOST_RUN


def test_a_damaged_run_spec_fails_its_experiment_and_spares_the_others(
    storage: Storage, superlink: FlowerControl
) -> None:
    damaged = _experiment(storage, complete=1, partial=False, run_spec={"rounds": "many"})
    fine = _experiment(storage, complete=1, partial=False)
    RunSupervisor(storage, superlink, "http://hub", max_restarts=3).watch()

    row = _row(storage, damaged)
    assert row.status == "failed" and row.error is not None
    assert "its stored run spec is unreadable" in row.error and "many" not in row.error
    resumed = _row(storage, fine)
    assert resumed.status == "running" and resumed.flower_run_id not in (None, LOST_RUN)
    superlink.stop(int(resumed.flower_run_id or 0))
