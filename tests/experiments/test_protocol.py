"""The hub ↔ Flower-app protocol: one definition, the same answers on both sides."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from modelfolders import manifest_for
from pydantic import ValidationError
from samples import contract_data, package_for

from fedpark.contracts import Contract
from fedpark.contracts.errors import SignatureError
from fedpark.experiments.features import plan_from_contract
from fedpark.experiments.protocol import (
    SPEC_KEY,
    HubOutput,
    ModelManifest,
    RunSpec,
    StrategyName,
    TrainingPlan,
    sign_manifest,
    verify_model,
)
from fedpark.experiments.protocol.plan import STRATEGY_PARAMS
from fedpark.experiments.protocol.resources.experiments import ExperimentCreate
from fedpark.experiments.protocol.spec import standardized_columns
from fedpark.experiments.strategies import CLASSES


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_hub_pools_exactly_the_columns_the_factory_standardizes(task: str) -> None:
    """The hub pools statistics for the columns it names; the ClientApp standardizes the
    columns its plan names: one rule decides both (booleans included)."""
    data = contract_data()
    data["columns"].append({"name": "door_open", "type": "bool"})
    if task == "regression":
        data["columns"][4]["rules"] = {"min": 0, "max": 3}
    contract = Contract.model_validate(data)
    plan = plan_from_contract(contract, task)
    expected = [*plan.numeric, *([plan.label] if task == "regression" else [])]
    assert standardized_columns(contract, task) == expected
    assert "door_open" in expected and "serial" not in expected


def _launch(**plan: Any) -> dict[str, Any]:
    return {
        "name": "x",
        "contract_id": "press-sensors",
        "contract_version": "1.0.0",
        "participants": ["acme", "bravo"],
    } | plan


def _spec(**plan: Any) -> dict[str, Any]:
    return {
        "experiment_id": "exp-0123456789ab",
        "contract": contract_data(),
        "contract_sha256": "0" * 64,
        "output": {"hub_url": "http://hub", "run_token": "fprun_secret"},
    } | plan


@pytest.mark.parametrize(
    "plan",
    [
        {"train": {"epochs": 101}},
        {"train": {"epochs": 0}},
        {"rounds": 1001},
        {"model": {"hidden": []}},
        {"model": {"hidden": [5000]}},
        {"model": {"window": 1}},
        {"model": {"normalization": "global"}},
        {"model": {"normalization": "factory", "task": "regression"}},
        {"round_timeout": 5},
        {"strategy": "fedsgd"},
        {"strategy": "fedprox", "strategy_params": {"beta": 0.1}},
        {"strategy_params": {"noise_multiplier": 1.0}},
        {"strategy": "krum", "strategy_params": {"num_malicious_nodes": 1.5}},
        {"unknown": 1},
    ],
)
def test_the_hub_and_the_flower_apps_refuse_the_same_plans(plan: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ExperimentCreate.model_validate(_launch(**plan))
    with pytest.raises(ValidationError):
        RunSpec.model_validate(_spec(**plan))


def test_a_launch_becomes_a_run_spec_without_retyping_the_plan() -> None:
    body = ExperimentCreate.model_validate(
        _launch(strategy="fedprox", strategy_params={"proximal_mu": 0.1}, rounds=7)
    )
    plan = body.plan()
    assert type(plan) is TrainingPlan and plan.rounds == 7
    spec = RunSpec(
        **plan.model_dump(),
        experiment_id="exp-0123456789ab",
        contract=contract_data(),
        contract_sha256="0" * 64,
        output=HubOutput(hub_url="http://hub", run_token="fprun_secret"),
    )
    assert spec.strategy is StrategyName.FEDPROX and spec.strategy_params == {"proximal_mu": 0.1}
    # What crosses into Flower's run config is the spec as JSON under one key, and reads back.
    config = {SPEC_KEY: spec.model_dump_json()}
    assert RunSpec.model_validate_json(config[SPEC_KEY]) == spec
    kept = json.dumps(spec.without_secrets())
    assert "fprun_secret" not in kept and "output" not in json.loads(kept)


def test_the_pooled_default_is_left_out_of_what_crosses() -> None:
    """FedPark versions from before the choice forbid unknown fields: a pooled plan reads
    there as before; a factory plan travels and reads back."""
    pooled = ExperimentCreate.model_validate(_launch()).plan()
    assert "normalization" not in json.loads(pooled.model_dump_json())["model"]
    own = ExperimentCreate.model_validate(_launch(model={"normalization": "factory"})).plan()
    sent = own.model_dump_json()
    assert json.loads(sent)["model"]["normalization"] == "factory"
    assert TrainingPlan.model_validate_json(sent).model.normalization == "factory"


def test_every_strategy_in_the_table_has_flowers_class() -> None:
    assert set(CLASSES) == set(STRATEGY_PARAMS) == set(StrategyName)


def _manifest(weights_sha256: str) -> ModelManifest:
    return manifest_for(package_for(contract_data()), weights_sha256)


def test_a_manifest_signed_by_the_hub_verifies_and_nothing_else_does() -> None:
    import hashlib

    key = Ed25519PrivateKey.generate()
    weights = b"weights"
    manifest = _manifest(hashlib.sha256(weights).hexdigest())
    signature = sign_manifest(manifest, "exp-0123456789ab", "http://hub", key)
    payload = verify_model(weights, manifest.canonical(), signature, key.public_key())
    assert payload["experiment_id"] == "exp-0123456789ab"
    assert ModelManifest.model_validate_json(manifest.canonical()) == manifest

    with pytest.raises(SignatureError, match="weights differ"):
        verify_model(b"other", manifest.canonical(), signature, key.public_key())
    altered = manifest.canonical().replace(b'"alice"', b'"mallory"')
    with pytest.raises(SignatureError, match="manifest differs"):
        verify_model(weights, altered, signature, key.public_key())
    with pytest.raises(SignatureError):
        verify_model(
            weights, manifest.canonical(), signature, Ed25519PrivateKey.generate().public_key()
        )
