"""Models, features, strategies and weights of the federated experiments."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    FedAvgM,
    FedProx,
    Krum,
)
from samples import contract_data, sensor_table

from fedpark.contracts import Contract, validate_table
from fedpark.experiments.features import (
    encode,
    encode_series,
    model_arrays,
    plan_from_contract,
    recent_split,
    windows,
)
from fedpark.experiments.models import ModelSpec, build_model
from fedpark.experiments.protocol import pooled_normalization
from fedpark.experiments.strategies import build_strategy
from fedpark.experiments.training import TrainConfig, class_rates, evaluate, macro_f1, train
from fedpark.experiments.weights import from_safetensors, to_safetensors, weights_sha256


@pytest.fixture
def contract() -> Contract:
    return Contract.model_validate(contract_data())


def test_plan_never_uses_id_or_pii(contract: Contract) -> None:
    plan = plan_from_contract(contract, "classification")
    assert "serial" not in plan.columns and "operator" not in plan.columns
    assert plan.numeric == ("temp", "pressure")
    assert plan.categorical == (("machine", ("press-1", "press-2", "press-3")),)
    assert plan.label == "fault" and plan.classes == (0, 1, 2, 3) and plan.time == "ts"
    assert plan.n_features == 5


def test_plan_refuses_what_cannot_work(contract: Contract) -> None:
    data = contract_data()
    data["columns"][4]["rules"] = {}
    with pytest.raises(ValueError, match="classes"):
        plan_from_contract(Contract.model_validate(data), "classification")
    data["columns"][4]["role"] = "feature"
    with pytest.raises(ValueError, match="exactly one label"):
        plan_from_contract(Contract.model_validate(data), "classification")


def test_pooled_normalization_equals_pooling_the_rows(contract: Contract) -> None:
    first, second = sensor_table(rows=3000, seed=1), sensor_table(rows=1000, seed=2)
    second = second.set_column(2, "temp", pa.array(second["temp"].to_numpy() + 20))
    profiles = [validate_table(contract, t).profile for t in (first, second)]
    norm = pooled_normalization(profiles, ["temp"])
    pooled = np.concatenate([first["temp"].to_numpy(), second["temp"].to_numpy()])
    assert norm.mean["temp"] == pytest.approx(pooled.mean(), rel=1e-5)
    assert norm.std["temp"] == pytest.approx(pooled.std(), rel=1e-4)


def test_encode_and_windows(contract: Contract) -> None:
    plan = plan_from_contract(contract, "classification")
    table = sensor_table(rows=500)
    profile = validate_table(contract, table).profile
    x, y = encode(table, plan, pooled_normalization([profile], plan.numeric))
    assert x.shape == (500, 5) and x.dtype == np.float32 and y.dtype == np.int64
    assert abs(float(x[:, 0].mean())) < 0.1 and np.isfinite(x).all()
    assert set(np.unique(x[:, 2:])) <= {0.0, 1.0} and (x[:, 2:].sum(axis=1) == 1).all()
    xw, yw = windows(x, y, window=16, stride=4)
    assert xw.shape == (122, 16, 5) and (yw == y[15::4][:122]).all()
    assert (xw[1, 0] == x[4]).all()


@pytest.mark.parametrize(
    ("spec", "shape"),
    [
        (ModelSpec("mlp", "classification"), (8, 5)),
        (ModelSpec("tcnn", "regression", window=16), (8, 16, 5)),
    ],
)
def test_models_learn_on_cpu(spec: ModelSpec, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, *shape[1:])).astype(np.float32)
    signal = x.reshape(len(x), -1)[:, 0]
    y = (signal > 0).astype(np.int64) if spec.task == "classification" else signal * 3
    model = build_model(spec, n_features=5, n_classes=2 if spec.task == "classification" else None)
    before = evaluate(model, x, y, spec.task)
    train(model, x, y, spec.task, TrainConfig(epochs=15, learning_rate=5e-3))
    after = evaluate(model, x, y, spec.task)
    assert after["loss"] < before["loss"] * 0.5
    if spec.task == "classification":
        assert after["accuracy"] > 0.9


def test_macro_f1() -> None:
    assert macro_f1(np.array([0, 1, 1]), np.array([0, 1, 1]), 2) == 1.0
    assert macro_f1(np.array([0, 0, 0]), np.array([0, 1, 1]), 2) == pytest.approx(0.25)


def test_class_rates_are_the_measures_of_fault_diagnosis_papers() -> None:
    """Normal 0; fault 1 named twice, once taken for fault 2 (noticed, misnamed), once
    missed; one normal row raised an alarm; fault 2 never occurs (no rates of its own)."""
    actual = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    predicted = np.array([0, 0, 0, 2, 1, 1, 2, 0])
    rates = class_rates(predicted, actual, 3)
    assert rates["recall/1"] == 0.5 and rates["detection/1"] == 0.75
    assert rates["recall/0"] == 0.75 and rates["false_alarm"] == 0.25
    assert rates["f1/1"] == pytest.approx(2 * 2 / (4 + 2))
    assert "recall/2" not in rates and "detection/0" not in rates
    assert "false_alarm" not in class_rates(predicted, actual, 3, normal=None)


def test_strategies_are_flowers_own(contract: Contract) -> None:
    prox = build_strategy("fedprox", {"proximal_mu": 0.1}, min_factories=3)
    assert isinstance(prox, FedProx) and prox.min_available_nodes == 3
    krum = build_strategy("krum", {"num_malicious_nodes": 1.0}, min_factories=5)  # from JSON
    assert isinstance(krum, Krum) and krum.num_malicious_nodes == 1
    assert type(krum.num_malicious_nodes) is int  # Flower slices with it
    with pytest.raises(ValueError, match="whole number"):
        build_strategy("krum", {"num_malicious_nodes": 1.5}, min_factories=5)
    momentum = build_strategy("fedavgm", {"server_momentum": 0.9}, min_factories=2)
    assert isinstance(momentum, FedAvgM) and momentum.server_momentum == 0.9
    dp = build_strategy("fedavg", {"noise_multiplier": 0.5, "clipping_norm": 1.0}, min_factories=2)
    assert isinstance(dp, DifferentialPrivacyClientSideFixedClipping)
    with pytest.raises(ValueError, match="unknown strategy"):
        build_strategy("fedmagic", {}, min_factories=2)
    with pytest.raises(ValueError, match="does not take"):
        build_strategy("fedavg", {"proximal_mu": 1}, min_factories=2)
    with pytest.raises(ValueError, match="both"):
        build_strategy("fedavg", {"noise_multiplier": 1}, min_factories=2)


def test_weights_round_trip_as_safetensors() -> None:
    model = build_model(ModelSpec("mlp", "classification"), n_features=5, n_classes=3)
    data = to_safetensors(model.state_dict(), {"experiment": "e1"})
    restored = from_safetensors(data)
    assert restored.keys() == model.state_dict().keys()
    assert all(torch.equal(restored[k], v) for k, v in model.state_dict().items())
    assert len(weights_sha256(data)) == 64
    assert not data.startswith(b"\x80")  # not a pickle stream


def test_checkpoints_from_arrays_load_as_torch_weights() -> None:
    from flwr.app import ArrayRecord

    from fedpark.experiments.weights import numpy_to_safetensors

    model = build_model(ModelSpec("tcnn", "regression", window=8), n_features=3, n_classes=None)
    record = ArrayRecord(model.state_dict())
    restored = from_safetensors(numpy_to_safetensors({k: v.numpy() for k, v in record.items()}))
    assert all(torch.equal(restored[k], v) for k, v in model.state_dict().items())


def test_series_keep_windows_inside_one_engine(contract: Contract) -> None:
    """Rows are ordered by series then time, and no window spans two series."""
    plan = plan_from_contract(contract, "classification", series="serial")
    assert "serial" in plan.columns and plan.n_features == 5  # read to segment, never a feature
    table = sensor_table(rows=60)
    # Two interleaved series with their own clocks: sorting by time alone would mix them.
    serial = pa.array([f"engine-{i % 2}" for i in range(60)])
    table = table.set_column(table.schema.get_field_index("serial"), "serial", serial)
    profile = validate_table(contract, sensor_table(rows=60)).profile
    x, y, series = encode_series(table, plan, pooled_normalization([profile], plan.numeric))
    assert (series[:30] == 0).all() and (series[30:] == 1).all()
    xw, _ = windows(x, y, window=10, series=series)
    assert len(xw) == 2 * (30 - 10 + 1)  # 21 windows per series, none across the boundary
    assert len(windows(x, y, window=10)[0]) == 60 - 10 + 1
    with pytest.raises(ValueError, match="id column"):
        plan_from_contract(contract, "classification", series="temp")


def test_recent_split_holds_out_the_tail_of_every_series(contract: Contract) -> None:
    """A history ending with whole runs must not evaluate on runs nobody trained on."""
    plan = plan_from_contract(contract, "classification", series="serial")
    table = sensor_table(rows=100)
    serial = pa.array([f"run-{i // 50}" for i in range(100)])  # run-0 then run-1
    table = table.set_column(table.schema.get_field_index("serial"), "serial", serial)
    norm = pooled_normalization([validate_table(contract, table).profile], plan.numeric)
    x, y, series = model_arrays(table, plan, norm)
    (train_x, _), (eval_x, _) = recent_split(x, y, 0.2, series)
    assert len(train_x) == 80 and len(eval_x) == 20
    # 10 rows held out of each run: the last 10 of run-0 and the last 10 of run-1.
    np.testing.assert_array_equal(eval_x[:10], x[40:50])
    np.testing.assert_array_equal(eval_x[10:], x[90:])
    # Without a series the last 20 % of the history is held out, as before.
    (_, _), (tail_x, _) = recent_split(x, y, 0.2)
    np.testing.assert_array_equal(tail_x, x[80:])
    # Windows keep their series number, so the split works on windows too.
    xw, yw, sw = model_arrays(table, plan, norm, window=10)
    assert len(xw) == len(yw) == len(sw) == 2 * (50 - 10 + 1)
    (_, _), (eval_w, _) = recent_split(xw, yw, 0.25, sw)
    assert len(eval_w) == 2 * (41 - int(41 * 0.75))


def test_regression_output_is_in_the_label_units_and_travels_with_the_weights() -> None:
    spec = ModelSpec("mlp", "regression", hidden=(8,))
    model = build_model(spec, n_features=3, n_classes=None, target=(120.0, 40.0))
    state = model.state_dict()
    assert float(state["target_mean"]) == 120.0 and float(state["target_std"]) == 40.0
    with torch.no_grad():
        start = model(torch.zeros(256, 3)).mean().item()
    assert 60 < start < 180  # starts near the label's mean, not near 0
    # A factory builds the model without the statistics and gets them with the weights.
    factory = build_model(spec, n_features=3, n_classes=None)
    factory.load_state_dict(state)
    model.eval(), factory.eval()
    x = torch.randn(5, 3)
    with torch.no_grad():
        assert torch.equal(factory(x), model(x))


def test_training_follows_the_seed_alone() -> None:
    """Dropout and the example order come from the seed: a round trained twice (in a warm
    fork or a new process) gives the same weights, and the caller's generator is untouched."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    spec = ModelSpec("mlp", "classification", dropout=0.3)

    def trained(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(0)  # the same initial weights
        model = build_model(spec, n_features=5, n_classes=2)
        torch.seed()  # whatever the process's generator is then
        train(model, x, y, "classification", TrainConfig(epochs=2, seed=seed))
        return [p.detach().clone() for p in model.parameters()]

    first, again, other = trained(7), trained(7), trained(8)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    model = build_model(spec, 5, 2)
    before = torch.get_rng_state()
    train(model, x, y, "classification", TrainConfig(epochs=1, seed=7))
    assert torch.equal(torch.get_rng_state(), before)  # training drew from its own stream
