"""The run supervisor's decisions, in process: real SQLite, the session's real S3, and a fake
of Flower's Control API (:mod:`fakeflower`) that says what became of each run.

Which lost runs are resumed, from which round and with which token; when it gives up; what it
does with a damaged spec or an experiment stopped meanwhile. The same supervisor against a
real SuperLink is ``test_supervisor.py`` (integration).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fakeflower import FakeFlowerControl
from samples import contract_data

from fedpark.experiments.protocol import HubOutput, RoundReport, RunSpec
from fedpark.experiments.protocol.resources.experiments import ExperimentCreate, Restart
from fedpark.hub.lifecycle import ExperimentStatus
from fedpark.hub.services.experiments import set_status
from fedpark.hub.services.supervisor import RunSupervisor
from fedpark.hub.services.tokens import hash_token
from fedpark.hub.storage import Catalog, Storage
from fedpark.hub.storage.models import Experiment, ExperimentRound, Organization, utcnow
from fedpark.hub.storage.objects import ObjectStore

LOST_RUN = 12345
OLD_TOKEN = "fprun_old"
HUB_URL = "http://hub"
SPEC = RunSpec(
    experiment_id="exp-x",
    contract=contract_data(),
    contract_sha256="0" * 64,
    rounds=5,
    output=HubOutput(hub_url=HUB_URL, run_token="fprun_launch"),
).without_secrets()


@pytest.fixture
def storage(tmp_path: Path, object_store: ObjectStore) -> Storage:
    [bucket] = object_store.buckets
    buckets = {"models": bucket, "contracts": bucket}
    storage = Storage(Catalog(f"sqlite:///{tmp_path / 'catalog.db'}"), object_store, buckets)
    storage.catalog.migrate()
    with storage.unit_of_work() as uow:
        uow.orgs.add(Organization(id="tu", name="TU", kind="university"))
    return storage


@pytest.fixture
def flower() -> FakeFlowerControl:
    fake = FakeFlowerControl()
    fake.seed_run(LOST_RUN)  # the experiments' run, running until a test says otherwise
    return fake


def _experiment(storage: Storage, *, complete: int, partial: bool, **extra: object) -> str:
    """An open experiment on run LOST_RUN with ``complete`` recorded rounds and maybe one
    cut off mid-report (a checkpoint without its report)."""
    experiment_id = f"exp-{uuid.uuid4().hex[:12]}"
    row = Experiment(
        id=experiment_id,
        name="watched",
        contract_id="c",
        contract_version="1.0.0",
        contract_sha256="0" * 64,
        org_id="tu",
        created_by="alice",
        status="running",
        settings=ExperimentCreate(
            name="watched",
            contract_id="cc",
            contract_version="1.0.0",
            participants=["a", "b"],
            round_timeout=600,
            min_factories=2,
            rounds=5,
        ),
        participants=[],
        flower_run_id=str(LOST_RUN),
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


def _supervisor(storage: Storage, flower: FakeFlowerControl, max_restarts: int) -> RunSupervisor:
    return RunSupervisor(storage, flower, HUB_URL, max_restarts=max_restarts)


@pytest.mark.parametrize("loss", ["failed", "lost"])
def test_a_run_flower_ends_while_its_experiment_is_open_resumes_from_the_last_complete_round(
    storage: Storage, flower: FakeFlowerControl, loss: str
) -> None:
    experiment = _experiment(storage, complete=2, partial=True)
    if loss == "failed":
        flower.finish(LOST_RUN, "failed", "the ServerApp process exited")
    else:
        flower.lose(LOST_RUN)
    _supervisor(storage, flower, max_restarts=3).watch()

    [spec] = flower.started
    row = _row(storage, experiment)
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
    experiment = _experiment(storage, complete=1, partial=False, restarts=earlier)
    flower.finish(LOST_RUN, "failed", "lost again")
    _supervisor(storage, flower, max_restarts=1).watch()  # FEDPARK_RUN_RESTARTS=1: used

    row = _row(storage, experiment)
    assert row.status == "failed" and row.ended_at is not None
    assert row.error == "lost again (not resumed: 1 of 1 restarts used)"
    assert row.flower_run_id == str(LOST_RUN) and len(row.restarts) == 1
    assert flower.calls_to("start_run") == []

    resumable = _experiment(storage, complete=1, partial=False, restarts=earlier)
    _supervisor(storage, flower, max_restarts=2).watch()  # one of two used: one more
    assert _row(storage, resumable).status == "running"
    assert len(_row(storage, resumable).restarts) == 2 and len(flower.started) == 1


def test_a_damaged_stored_spec_is_not_resumed_but_failed_with_the_reason(
    storage: Storage, flower: FakeFlowerControl
) -> None:
    damaged = _experiment(storage, complete=1, partial=False, run_spec={"rounds": "many"})
    fine = _experiment(storage, complete=1, partial=False)
    flower.finish(LOST_RUN, "failed", "lost")
    _supervisor(storage, flower, max_restarts=3).watch()

    row = _row(storage, damaged)
    assert row.status == "failed"
    assert row.error == "lost (not resumed: its stored run spec is unreadable)"
    assert row.restarts == [] and row.flower_run_id == str(LOST_RUN)
    # The others are still watched: one run started, for the sound experiment only.
    assert len(flower.started) == 1
    resumed = _row(storage, fine)
    assert resumed.status == "running" and len(resumed.restarts) == 1


def test_an_experiment_stopped_while_its_run_resumes_stays_stopped_and_the_new_run_is_stopped(
    storage: Storage, flower: FakeFlowerControl
) -> None:
    experiment = _experiment(storage, complete=1, partial=False)
    flower.finish(LOST_RUN, "failed", "lost")

    def researcher_stops(run_id: int) -> None:  # between the new run's start and its record
        set_status(storage, experiment, ExperimentStatus.STOPPED, "stopped by alice")

    flower.on_start = researcher_stops
    _supervisor(storage, flower, max_restarts=3).watch()

    [new_run] = [r.run_id for r in flower.runs.values() if r.spec is not None]
    assert flower.calls_to("stop") == [(new_run,)]  # the continuation, never the lost run
    assert flower.runs[new_run].status.sub_status == "stopped"
    row = _row(storage, experiment)
    assert row.status == "stopped" and row.error == "stopped by alice"
    assert row.flower_run_id == str(LOST_RUN) and row.restarts == []
    assert row.run_token_hash == hash_token(OLD_TOKEN + experiment)


def test_a_superlink_still_coming_back_is_tried_again_on_the_next_pass(
    storage: Storage, flower: FakeFlowerControl
) -> None:
    experiment = _experiment(storage, complete=1, partial=False)
    flower.lose(LOST_RUN)
    flower.unavailable = {"start_run"}
    supervisor = _supervisor(storage, flower, max_restarts=3)
    supervisor.watch()
    row = _row(storage, experiment)
    assert row.status == "running" and row.restarts == [] and row.flower_run_id == str(LOST_RUN)

    flower.unavailable = set()
    supervisor.watch()
    assert len(_row(storage, experiment).restarts) == 1 and len(flower.started) == 1


def test_flower_states_move_the_experiment_stopped_and_pending_to_running(
    storage: Storage, flower: FakeFlowerControl
) -> None:
    pending = _experiment(storage, complete=0, partial=False, status="pending")
    supervisor = _supervisor(storage, flower, max_restarts=3)
    supervisor.watch()  # LOST_RUN is running in Flower
    assert _row(storage, pending).status == "running"

    flower.finish(LOST_RUN, "stopped")
    supervisor.watch()
    row = _row(storage, pending)
    assert row.status == "stopped" and row.error == "stopped in Flower"
    assert flower.calls_to("start_run") == []


def test_closed_experiments_are_not_asked_about(
    storage: Storage, flower: FakeFlowerControl
) -> None:
    experiment = _experiment(storage, complete=1, partial=False, status="finished")
    flower.lose(LOST_RUN)
    _supervisor(storage, flower, max_restarts=3).watch()

    assert flower.calls == []
    assert _row(storage, experiment).status == "finished"
