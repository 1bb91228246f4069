"""Experiments as the run supervisor finds them: open, on a Flower run, with some rounds
recorded and maybe one cut off mid-report; for the supervisor's tests against a real
SuperLink (test_supervisor.py) and against the fake one (test_supervisor_decisions.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

from samples import contract_data

from fedpark.experiments.protocol import HubOutput, RoundReport, RunSpec
from fedpark.experiments.protocol.resources.experiments import ExperimentCreate
from fedpark.hub.services.tokens import hash_token
from fedpark.hub.storage import Catalog, Storage
from fedpark.hub.storage.models import Experiment, ExperimentRound, Organization, utcnow
from fedpark.hub.storage.objects import ObjectStore

LOST_RUN = 12345
OLD_TOKEN = "fprun_old"
HUB_URL = "http://hub"
# Not a runnable spec: a continuation's ServerApp exits at once (no hub to report to here).
# The spec as a launch keeps it: everything but where to report (the run token).
SPEC = RunSpec(
    experiment_id="exp-x",
    contract=contract_data(),
    contract_sha256="0" * 64,
    rounds=5,
    output=HubOutput(hub_url=HUB_URL, run_token="fprun_launch"),
).without_secrets()


def new_storage(folder: Path, object_store: ObjectStore) -> Storage:
    """A fresh catalog in ``folder`` on the session's object store, with one organization."""
    [bucket] = object_store.buckets
    buckets = {"models": bucket, "contracts": bucket}
    storage = Storage(Catalog(f"sqlite:///{folder / 'catalog.db'}"), object_store, buckets)
    storage.catalog.migrate()
    with storage.unit_of_work() as uow:
        uow.orgs.add(Organization(id="tu", name="TU", kind="university"))
    return storage


def open_experiment(storage: Storage, *, complete: int, partial: bool, **extra: object) -> str:
    """An open experiment on run LOST_RUN with ``complete`` recorded rounds and maybe one
    cut off mid-report (a checkpoint without its report); ``extra`` sets other fields."""
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


def row_of(storage: Storage, experiment_id: str) -> Experiment:
    with storage.unit_of_work() as uow:
        row = uow.experiments.get(experiment_id)
        assert row is not None
        return row
