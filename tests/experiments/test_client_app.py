"""FedPark's ClientApp called as Flower calls it: one training message may carry the last
round's evaluation, and that evaluation is exactly what an evaluation message would give."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from federation import write_contract_dir
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.supercore.task_identity import TaskIdentity
from samples import contract_data, sensor_table

from fedpark.contracts import Contract, contract_sha256
from fedpark.experiments.client_app import app
from fedpark.experiments.control_variates import OWN_CONTROL
from fedpark.experiments.features import plan_from_contract
from fedpark.experiments.models import ModelSpec, build_model
from fedpark.experiments.protocol import (
    ALONE_PREFIX,
    EVALUATE_FIRST,
    EVALUATION_RECORD,
    LOCAL_BASELINE,
    SCAFFOLD_CLIENT,
    SCAFFOLD_CONTROL,
    SPEC_KEY,
    FactoryProblem,
    ProblemKind,
    RunSpec,
)
from fedpark.experiments.weights import from_safetensors


@pytest.fixture(autouse=True)
def _outside_a_run() -> None:
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1


@pytest.fixture
def factory(tmp_path: Path) -> tuple[Context, ArrayRecord]:
    """A factory with a valid Parquet file, and a global model of the run's shape."""
    contract = Contract.model_validate(contract_data())
    pq.write_table(sensor_table(), tmp_path / "line.parquet")  # valid: the contract's own
    folder = write_contract_dir(contract, Ed25519PrivateKey.generate(), tmp_path / "contract")
    plan = plan_from_contract(contract, "classification")
    table = sensor_table()
    numeric = {name: table[name].to_numpy(zero_copy_only=False) for name in plan.numeric}
    spec = RunSpec.model_validate(
        {
            "experiment_id": "exp-one-message",
            "contract": contract.model_dump(mode="json"),
            "contract_sha256": contract_sha256(contract),
            "model": {"kind": "mlp", "hidden": [8]},
            "train": {"epochs": 2},
            "normalization": {
                "mean": {name: float(np.nanmean(v)) for name, v in numeric.items()},
                "std": {name: float(np.nanstd(v)) for name, v in numeric.items()},
            },
            "output": {"directory": str(tmp_path / "out")},
        }
    )
    context = Context(
        run_id=1,
        node_id=5,
        node_config={
            "data-path": str(tmp_path / "line.parquet"),
            "contract-dir": str(folder),
            "org": "acme",
            "work-dir": str(tmp_path / "work"),
        },
        state=RecordDict(),
        run_config={SPEC_KEY: spec.model_dump_json()},
    )
    torch.manual_seed(3)
    model = build_model(ModelSpec.of(spec.model), plan.n_features, len(plan.classes or ()))
    return context, ArrayRecord(model.state_dict())


def _send(context: Context, kind: str, arrays: ArrayRecord, **config: object) -> RecordDict:
    content = RecordDict({"arrays": arrays, "config": ConfigRecord(config)})  # type: ignore[arg-type]
    reply = app(Message(content, dst_node_id=5, message_type=kind), context)
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    return reply.content


def test_a_training_reply_carries_the_evaluation_an_evaluation_message_gives(
    factory: tuple[Context, ArrayRecord],
) -> None:
    context, arrays = factory
    alone = _send(context, MessageType.EVALUATE, arrays)
    both = _send(context, MessageType.TRAIN, arrays, **{"server-round": 2, EVALUATE_FIRST: True})
    evaluation = dict(both[EVALUATION_RECORD])
    assert evaluation == pytest.approx(dict(alone["metrics"]))
    assert {"loss", "accuracy", "macro_f1", "num-examples"} <= set(evaluation)
    # The reply is still what Flower's strategies expect: one ArrayRecord, one MetricRecord.
    assert len(both.array_records) == 1 and len(both.metric_records) == 1


def test_evaluating_first_leaves_the_training_as_it_was(
    factory: tuple[Context, ArrayRecord],
) -> None:
    context, arrays = factory
    plain = _send(context, MessageType.TRAIN, arrays, **{"server-round": 2})
    both = _send(context, MessageType.TRAIN, arrays, **{"server-round": 2, EVALUATE_FIRST: True})
    assert EVALUATION_RECORD not in plain
    for name, array in plain["arrays"].items():  # type: ignore[union-attr]
        assert np.array_equal(array.numpy(), both["arrays"][name].numpy()), name  # type: ignore[index]
    assert json.loads(json.dumps(dict(plain["metrics"]))) == dict(both["metrics"])


def test_the_last_evaluation_adds_a_model_trained_on_the_factorys_rows_alone(
    factory: tuple[Context, ArrayRecord],
) -> None:
    """Same initial weights as the run (its seed), rounds x epochs of local training, the
    same held-out rows: only the metrics travel, beside the federated model's."""
    context, arrays = factory
    plain = dict(_send(context, MessageType.EVALUATE, arrays)["metrics"])
    last = dict(_send(context, MessageType.EVALUATE, arrays, **{LOCAL_BASELINE: True})["metrics"])
    assert {k: v for k, v in last.items() if not k.startswith(ALONE_PREFIX)} == plain
    # switched off (`--no-local-baseline`: the server sends False), nothing is trained alone
    off = dict(_send(context, MessageType.EVALUATE, arrays, **{LOCAL_BASELINE: False})["metrics"])
    assert off == plain and not any(k.startswith(ALONE_PREFIX) for k in off)
    spec = RunSpec.model_validate_json(str(context.run_config[SPEC_KEY]))
    assert last[f"{ALONE_PREFIX}epochs"] == spec.rounds * spec.train.epochs  # 3 x 2
    assert {f"{ALONE_PREFIX}{m}" for m in ("loss", "accuracy", "macro_f1")} <= set(last)
    again = dict(_send(context, MessageType.EVALUATE, arrays, **{LOCAL_BASELINE: True})["metrics"])
    assert again == last  # seeded: the baseline does not depend on which process runs it
    # the alone model itself stays at the factory, in its work dir, for its own comparisons
    [kept] = (Path(str(context.node_config["work-dir"]))).glob("alone-*.safetensors")
    weights = from_safetensors(kept.read_bytes())
    assert set(weights) == set(arrays) and kept.name == "alone-1.safetensors"


def test_a_deadline_stops_training_between_epochs() -> None:
    import time

    from fedpark.experiments.training import TrainConfig, train

    model = build_model(ModelSpec(hidden=(4,)), 3, 2)
    x, y = np.zeros((10, 3), np.float32), np.zeros(10, np.int64)
    done: list[int] = []
    train(model, x, y, "classification", TrainConfig(epochs=5), time.monotonic() - 1, done.append)
    assert done == [1]  # the first epoch always runs, no later one starts past the deadline


def _send_scaffold(
    context: Context, arrays: ArrayRecord, control: dict[str, np.ndarray]
) -> RecordDict:
    content = RecordDict(
        {
            "arrays": arrays,
            "config": ConfigRecord({"server-round": 1}),
            SCAFFOLD_CONTROL: ArrayRecord({k: Array(v) for k, v in control.items()}),
        }
    )
    reply = app(Message(content, dst_node_id=5, message_type=MessageType.TRAIN), context)
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    return reply.content


def test_scaffold_corrects_training_and_keeps_the_factorys_control_between_rounds(
    factory: tuple[Context, ArrayRecord],
) -> None:
    """With the server's ``c`` in the message, the factory trains on corrected gradients,
    replies with its new ``c_i`` beside the model (the strategy takes it off before
    Flower's aggregation) and keeps ``c_i`` in the run's node state for next round."""
    context, arrays = factory
    zeros = {k: np.zeros_like(a.numpy()) for k, a in arrays.items()}
    plain = _send(context, MessageType.TRAIN, arrays, **{"server-round": 1})
    first = _send_scaffold(context, arrays, zeros)
    # c = c_i = 0: no correction, the same training as without SCAFFOLD
    for name, array in plain["arrays"].items():  # type: ignore[union-attr]
        assert np.allclose(array.numpy(), first["arrays"][name].numpy()), name  # type: ignore[index]
    delta = {k: a.numpy() for k, a in first[SCAFFOLD_CLIENT].items()}  # type: ignore[union-attr]
    assert set(delta) == set(zeros)
    assert any(np.abs(v).sum() > 0 for v in delta.values())  # c_i moved to the mean gradient
    own = {k: a.numpy() for k, a in context.state[OWN_CONTROL].items()}  # type: ignore[union-attr]
    assert all(np.array_equal(own[k], delta[k]) for k in delta)  # kept as sent
    assert len(first.array_records) == 2 and len(first.metric_records) == 1
    # round 2, the same c: the correction c - c_i is no longer 0, so training differs
    second = _send_scaffold(context, arrays, zeros)
    moved = [
        not np.allclose(a.numpy(), second["arrays"][k].numpy())  # type: ignore[index]
        for k, a in first["arrays"].items()  # type: ignore[union-attr]
    ]
    assert any(moved)
    again = {k: a.numpy() for k, a in second[SCAFFOLD_CLIENT].items()}  # type: ignore[union-attr]
    assert not all(np.allclose(again[k], delta[k]) for k in delta)  # the corrected path's


def test_a_control_that_does_not_fit_the_model_is_a_named_failure(
    factory: tuple[Context, ArrayRecord],
) -> None:
    context, arrays = factory
    name = next(iter(arrays))
    wrong = {name: np.zeros(3, np.float32)}
    content = RecordDict(
        {
            "arrays": arrays,
            "config": ConfigRecord({"server-round": 1}),
            SCAFFOLD_CONTROL: ArrayRecord({k: Array(v) for k, v in wrong.items()}),
        }
    )
    reply = app(Message(content, dst_node_id=5, message_type=MessageType.TRAIN), context)
    assert reply.has_error()
    problem = FactoryProblem.model_validate_json(reply.error.reason)
    assert problem.kind is ProblemKind.FACTORY_ERROR and problem.error == "ControlMismatchError"
    assert OWN_CONTROL not in context.state


def _with(context: Context, **model: object) -> Context:
    """The factory's context for a run whose spec's model settings and pooled statistics
    are changed (``shift``: the pooled means moved by that many spreads)."""
    spec = RunSpec.model_validate_json(str(context.run_config[SPEC_KEY]))
    shift = float(model.pop("shift", 0.0))  # type: ignore[arg-type]
    norm = spec.normalization
    moved = norm.model_copy(
        update={"mean": {k: v + shift * norm.std[k] for k, v in norm.mean.items()}}
    )
    spec = spec.model_copy(
        update={"model": spec.model.model_copy(update=model), "normalization": moved}
    )
    return Context(
        run_id=context.run_id,
        node_id=context.node_id,
        node_config=context.node_config,
        state=RecordDict(),
        run_config={SPEC_KEY: spec.model_dump_json()},
    )


def test_a_factory_normalized_run_standardizes_with_the_factorys_own_statistics(
    factory: tuple[Context, ArrayRecord],
) -> None:
    """The pooled statistics play no part; the factory's own profile does (the fixture's
    pooled statistics are this one factory's, so both give the same inputs)."""
    context, arrays = factory

    def loss(**model: object) -> float:
        return float(
            _send(_with(context, **model), MessageType.EVALUATE, arrays)["metrics"]["loss"]
        )  # type: ignore[index]

    own = loss(normalization="factory")
    assert loss(normalization="factory", shift=5.0) == own
    assert own == pytest.approx(loss(normalization="pooled"), rel=1e-3)
    assert loss(normalization="pooled", shift=5.0) != pytest.approx(own, rel=1e-2)  # control
