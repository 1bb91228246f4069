"""Which round's weights a run publishes: the last, or the best by the task's headline
metric; the signed manifest says which and why, and every place a person reads a run (the
model card, ``experiment status``) warns when the last round is not the best.

Through the hub's real routes in process (a run's reports, the seal, a researcher's status),
without Flower: the rule is the hub's, applied to the rounds it recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from clirunner import CliRunner
from harness import running_experiment
from inprocess import InProcessHub, in_process_hub
from samples import contract_data, package_for

from fedpark.clients.cli import experiments as experiment_cli
from fedpark.clients.cli.main import app
from fedpark.experiments.protocol import FactoryResult, RoundReport
from fedpark.experiments.protocol.card import model_card
from fedpark.experiments.protocol.client import HubClient, RetryPolicy
from fedpark.experiments.protocol.manifest import ModelManifest, choose_round
from fedpark.experiments.protocol.plan import PublishRule
from fedpark.experiments.protocol.resources.experiments import RunFinishCreate
from fedpark.experiments.protocol.resources.identity import (
    OrganizationCreate,
    Role,
    TokenCreate,
    UserCreate,
)
from fedpark.hub.storage.embedded import EmbeddedS3
from fedpark.hub.storage.models import ModelPart

# Round 2 is the best by macro-F1; the last round (3) is the worst.
F1 = {1: 0.61, 2: 0.83, 3: 0.52}


def _report(number: int, org: str = "echo") -> RoundReport:
    metrics = {"loss": 1.0 - F1[number], "accuracy": F1[number], "macro_f1": F1[number]}
    return RoundReport(
        round=number,
        contributors=[org],
        min_factories=1,
        train={"train_loss": 0.5},
        evaluate=metrics,
        train_factories=[FactoryResult(org=org, node_id=1, examples=40)],
        evaluate_factories=[FactoryResult(org=org, node_id=1, examples=10, metrics=metrics)],
    )


def test_the_rule_picks_the_best_round_and_says_the_last_is_worse() -> None:
    rounds = [_report(n) for n in F1]
    last = choose_round(rounds, "classification", "last")
    assert (last.round, last.best_round, last.metric) == (3, 2, "macro_f1")
    assert "launch with --publish best" in (last.warning() or "")
    best = choose_round(rounds, "classification", "best")
    assert (best.round, best.value) == (2, 0.83)
    assert "published the best, round 2 had macro_f1 0.8300" in (best.warning() or "")
    better_last = [
        r.model_copy(update={"evaluate": {"macro_f1": n / 10}}) for n, r in enumerate(rounds, 1)
    ]
    assert choose_round(better_last, "classification", "best").warning() is None
    # regression: lower RMSE is better
    errors = [r.model_copy(update={"evaluate": {"rmse": F1[r.round]}}) for r in rounds]
    assert choose_round(errors, "regression", "best").round == 3


@pytest.fixture(scope="module")
def hub(s3_server: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    with in_process_hub(s3_server, tmp_path_factory.mktemp("hub")) as hub:
        yield hub


def _sealed_run(hub: InProcessHub, org: str, publish: PublishRule) -> tuple[str, ModelManifest]:
    contract = contract_data()
    experiment_id, run_token = running_experiment(
        hub.runtime.storage.catalog, contract, org, [org], publish=publish
    )
    with HubClient(hub.url, run_token, retry=RetryPolicy(5), transport=hub.transport) as run:
        for number in F1:
            run.put_checkpoint(experiment_id, number, f"weights-{number}".encode())
            run.report_round(experiment_id, _report(number, org))
        run.put_model(experiment_id, b"weights-3 as the ServerApp sends the last round's")
        run.finish(experiment_id, RunFinishCreate(package=package_for(contract)))
    storage = hub.runtime.storage
    with storage.unit_of_work() as uow:
        sealed = uow.experiments.model(experiment_id)
    assert sealed is not None
    bucket = storage.buckets["models"]
    manifest = ModelManifest.model_validate_json(
        storage.objects.read(bucket, sealed.ref(ModelPart.MANIFEST))
    )
    weights = storage.objects.read(bucket, sealed.ref(ModelPart.WEIGHTS))
    assert manifest.weights.sha256 == hashlib.sha256(weights).hexdigest()
    return experiment_id, manifest


def test_a_run_with_publish_best_seals_the_best_rounds_weights(hub: InProcessHub) -> None:
    with HubClient(hub.url, hub.admin_token, transport=hub.transport) as admin:
        admin.create_organization(OrganizationCreate(id="echo", name="Echo", kind="factory"))
    _, manifest = _sealed_run(hub, "echo", "best")
    assert manifest.published is not None
    assert (manifest.published.round, manifest.published.rule) == (2, "best")
    assert manifest.weights.sha256 == hashlib.sha256(b"weights-2").hexdigest()
    card = model_card(manifest)
    assert any("weights of round 2 (the best round by held-out macro_f1" in d for d in card.data)
    assert "published the best, round 2" in card.limits[0]


def test_status_shows_factories_and_warns_when_the_last_round_is_worse(
    hub: InProcessHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HubClient(hub.url, hub.admin_token, transport=hub.transport) as admin:
        admin.create_organization(OrganizationCreate(id="foxtrot", name="F", kind="factory"))
        user = admin.create_user(
            UserCreate(username="fox-r", org_id="foxtrot", role=Role.RESEARCHER)
        )
        token = admin.create_token(TokenCreate(name="t", user_id=user.id)).token
    experiment_id, manifest = _sealed_run(hub, "foxtrot", "last")
    assert manifest.published is not None and manifest.published.round == 3
    assert (
        manifest.weights.sha256
        == hashlib.sha256(b"weights-3 as the ServerApp sends the last round's").hexdigest()
    )
    assert "launch with --publish best" in model_card(manifest).limits[0]

    monkeypatch.setattr(
        experiment_cli,
        "client",
        lambda _hub, token: HubClient(hub.url, token, transport=hub.transport),
    )
    runner = CliRunner()
    env = {"COLUMNS": "250", "FEDPARK_TOKEN": token, "FEDPARK_HUB": hub.url}
    status = runner.invoke(app, ["experiment", "status", experiment_id], env=env)
    assert status.exit_code == 0, status.output
    assert "Metrics per factory" in status.output
    assert "│ foxtrot │ 3 " in status.output  # its update is in all 3 rounds
    assert (
        "warning: the last round is not the best: the last round (3) has macro_f1 0.5200, round 2 "
        "had macro_f1 0.8300; launch with --publish best" in status.output
    )
    watched = runner.invoke(app, ["experiment", "watch", experiment_id], env=env)
    assert watched.exit_code == 0, watched.output
    lines = watched.output.splitlines()  # not a terminal: one plain line per round
    assert lines[:3] == [
        f"round {n}/3: train_loss 0.5000, loss {1 - F1[n]:.4f}, macro_f1 {F1[n]:.4f}, "
        f"accuracy {F1[n]:.4f}, factories 1"
        for n in F1
    ]
    assert lines[3] == "finished: 3 rounds"
