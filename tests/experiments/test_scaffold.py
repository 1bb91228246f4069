"""SCAFFOLD on Flower's own strategy loop: the server's control variate goes out with every
training message, the factories' own come back and ``c`` is their mean (each factory counted
once, only with k of them, never from a malformed one); with real local training it
converges on an IID split like FedAvg and removes the drift FedAvg keeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.supercore.task_identity import TaskIdentity
from grids import Answer, Grid4Tests

from fedpark.experiments.control_variates import (
    ControlVariates,
    finish,
    from_message,
    keep_own_control,
    own_control,
)
from fedpark.experiments.models import ModelSpec, build_model
from fedpark.experiments.protocol import SCAFFOLD_CLIENT, SCAFFOLD_CONTROL
from fedpark.experiments.protocol.plan import StrategyName, check_strategy_params
from fedpark.experiments.scaffold import Scaffold
from fedpark.experiments.strategies import build_strategy
from fedpark.experiments.training import TrainConfig, evaluate, train


@pytest.fixture(autouse=True)
def _outside_a_run() -> None:
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1


def _arrays(values: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.asarray(v)) for k, v in values.items()})


def replying(values: list[float], seen: list[dict[str, np.ndarray]], org: str) -> Answer:
    """A factory (``org``) that records the control it is sent and replies with its model
    moved by 1 and ``c_i`` = ``values[r]`` everywhere in round ``r`` (the last one after)."""
    calls = [0]

    def answer(message: Message) -> Message:
        if message.metadata.message_type != MessageType.TRAIN:
            metrics = MetricRecord({"num-examples": 1})
            return Message(RecordDict({"metrics": metrics}), reply_to=message)
        control = message.content[SCAFFOLD_CONTROL]
        seen.append({k: a.numpy() for k, a in control.items()})  # type: ignore[union-attr]
        arrays = message.content["arrays"]
        value = values[min(calls[0], len(values) - 1)]
        calls[0] += 1
        content = RecordDict(
            {
                "arrays": _arrays({k: a.numpy() + 1 for k, a in arrays.items()}),  # type: ignore[union-attr]
                "metrics": MetricRecord({"num-examples": 10}),
                "fedpark": ConfigRecord({"org": org}),
                SCAFFOLD_CLIENT: _arrays(
                    {k: np.full_like(a.numpy(), value) for k, a in arrays.items()}  # type: ignore[union-attr]
                ),
            }
        )
        return Message(content, reply_to=message)

    return answer


def _run(factories: dict[int, Answer], rounds: int, k: int = 1) -> ArrayRecord:
    strategy = Scaffold(min_train_nodes=k, min_evaluate_nodes=k, min_available_nodes=k)
    weights = {"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)}
    grid = Grid4Tests(factories)
    return strategy.start(grid, _arrays(weights), num_rounds=rounds, timeout=10).arrays


def test_the_control_is_the_mean_of_each_factorys_last_control() -> None:
    """``c = 1/N sum c_i`` over the factories, each with the last ``c_i`` it sent."""
    seen: dict[int, list[dict[str, np.ndarray]]] = {1: [], 2: []}
    strategy = build_strategy("scaffold", {}, min_factories=2)
    assert isinstance(strategy, Scaffold)
    grid = Grid4Tests(
        {1: replying([1.0], seen[1], "alpha"), 2: replying([3.0, 7.0], seen[2], "bravo")}
    )
    weights = {"w": np.ones((2, 3), np.float32), "b": np.zeros(3, np.float32)}
    strategy.start(grid, _arrays(weights), num_rounds=3, timeout=10)
    for node in (1, 2):
        assert [c["w"][0, 0] for c in seen[node]] == [0.0, 2.0, 4.0]
        assert set(seen[node][0]) == {"w", "b"}


def test_a_factory_that_drops_out_or_restarts_is_counted_once() -> None:
    """Round 2: bravo fails (its last c_i, 3, still counts); round 3: bravo is back under a
    new node id, as a restarted SuperNode is, with c_i 5 (it replaces the 3, not adds)."""
    seen: list[dict[str, np.ndarray]] = []
    bravo = replying([3.0], [], "bravo")
    restarted = replying([5.0], [], "bravo")
    alpha = replying([1.0], seen, "alpha")

    def round_of(message: Message) -> int:  # Flower puts it in every message's config
        return int(message.content["config"]["server-round"])  # type: ignore[index,arg-type]

    def bravo_node(message: Message) -> Message | None:
        if round_of(message) == 1:
            return bravo(message)
        if round_of(message) == 2:
            return Message(Error(4243, "x"), reply_to=message)
        return None  # this node is gone: node 3 is bravo now

    def bravo_again(message: Message) -> Message | None:
        return restarted(message) if round_of(message) >= 3 else None

    _run({1: alpha, 2: bravo_node, 3: bravo_again}, rounds=4)
    assert [c["w"][0, 0] for c in seen] == [0.0, 2.0, 2.0, 3.0]


def test_the_control_moves_only_with_k_factories_controls() -> None:
    """k = 2: one factory's c_i alone never reaches the others (the model still averages)."""
    seen: list[dict[str, np.ndarray]] = []

    def no_control(message: Message) -> Message | None:
        reply = replying([9.0], [], "bravo")(message)
        if message.metadata.message_type == MessageType.TRAIN:
            del reply.content[SCAFFOLD_CLIENT]
        return reply

    result = _run({1: replying([4.0], seen, "alpha"), 2: no_control}, rounds=3, k=2)
    assert [c["w"][0, 0] for c in seen] == [0.0, 0.0, 0.0]
    assert np.allclose(result["w"].numpy(), 3.0)  # 3 rounds, each model moved by 1


@pytest.mark.parametrize(
    "bad",
    [
        {"w": np.ones(3, np.float32), "b": np.ones(3, np.float32)},  # wrong shape
        {"w": np.ones((2, 3), np.int32), "b": np.ones(3, np.int32)},  # not floats
        {"w": np.full((2, 3), np.nan, np.float32), "b": np.ones(3, np.float32)},  # NaN
        {"w": np.ones((2, 3), np.float32)},  # a name missing
    ],
    ids=["shape", "dtype", "nan", "names"],
)
def test_a_malformed_control_is_left_out_and_ends_nothing(bad: dict[str, np.ndarray]) -> None:
    """The model of that reply is still averaged (FedAvg gets one ArrayRecord per reply);
    its c_i is not, and the run goes on."""
    seen: list[dict[str, np.ndarray]] = []

    def malformed(message: Message) -> Message | None:
        reply = replying([0.0], [], "bravo")(message)
        if message.metadata.message_type == MessageType.TRAIN:
            reply.content[SCAFFOLD_CLIENT] = _arrays(bad)
            reply.content["arrays"] = _arrays(
                {k: a.numpy() + 2 for k, a in message.content["arrays"].items()}  # type: ignore[union-attr]
            )
        return reply

    result = _run(
        {
            1: replying([2.0], seen, "alpha"),
            2: malformed,
            3: lambda m: Message(Error(4243, "x"), reply_to=m),
        },
        rounds=2,
    )
    assert [c["w"][0, 0] for c in seen] == [0.0, 2.0]
    assert np.allclose(result["w"].numpy(), 2 * 1.5)  # the mean of +1 and +2, twice


def test_differential_privacy_cannot_wrap_scaffold() -> None:
    with pytest.raises(ValueError, match="scaffold cannot run with differential privacy"):
        check_strategy_params(
            StrategyName.SCAFFOLD, {"noise_multiplier": 1.0, "clipping_norm": 1.0}
        )


def test_the_factory_side_corrects_gradients_and_estimates_its_mean_gradient() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    server = {k: np.full(tuple(v.shape), 0.5, np.float32) for k, v in model.state_dict().items()}
    own = {k: np.full(tuple(v.shape), 0.2, np.float32) for k, v in model.state_dict().items()}
    control = ControlVariates(model, server, own)
    raw = []
    for x in (torch.ones(1, 2), 2 * torch.ones(1, 2)):
        model.zero_grad()
        model(x).sum().backward()
        raw.append(model.weight.grad.clone())  # type: ignore[union-attr]
        control()
        assert torch.allclose(model.weight.grad, raw[-1] + 0.3)  # type: ignore[arg-type]
    updated = control.updated()
    assert np.allclose(updated["weight"], ((raw[0] + raw[1]) / 2).numpy())
    state = RecordDict()
    assert own_control(state) == {}
    keep_own_control(state, updated)
    assert np.array_equal(own_control(state)["bias"], updated["bias"])


def _blobs(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    return (centers[y] + rng.normal(0, 0.6, (n, 2))).astype(np.float32), y


def _trainer(x: np.ndarray, y: np.ndarray, state: RecordDict) -> Answer:
    """A factory that really trains (Adam, 1 epoch), with SCAFFOLD's correction when the
    message carries a control, as FedPark's ClientApp does."""

    def answer(message: Message) -> Message:
        model = build_model(ModelSpec(hidden=(8,)), 2, 3)
        model.load_state_dict(message.content["arrays"].to_torch_state_dict())  # type: ignore[union-attr]
        if message.metadata.message_type != MessageType.TRAIN:
            return Message(
                RecordDict({"metrics": MetricRecord({"num-examples": len(x)})}), reply_to=message
            )
        control = from_message(message.content, model, state)
        config = TrainConfig(epochs=1, batch_size=32, learning_rate=0.01)
        train(model, x, y, "classification", config, on_gradients=control)
        content = RecordDict(
            {
                "arrays": ArrayRecord(model.state_dict()),
                "metrics": MetricRecord({"num-examples": len(x)}),
                "config": ConfigRecord({}),
            }
        )
        if control is not None:
            content[SCAFFOLD_CLIENT] = finish(control, state)
        return Message(content, reply_to=message)

    return answer


@pytest.mark.parametrize("name", ["fedavg", "scaffold"])
def test_it_converges_on_an_iid_split_like_fedavg(name: str) -> None:
    x, y = _blobs(0, 900)
    test_x, test_y = _blobs(1, 600)
    parts = np.array_split(np.random.default_rng(2).permutation(len(x)), 3)
    grid = Grid4Tests(
        {
            i + 1: _trainer(x[p], y[p], Context(1, i + 1, {}, RecordDict(), {}).state)
            for i, p in enumerate(parts)
        }
    )
    torch.manual_seed(0)
    model = build_model(ModelSpec(hidden=(8,)), 2, 3)
    result = build_strategy(name, {}, min_factories=3).start(
        grid, ArrayRecord(model.state_dict()), num_rounds=4, timeout=10
    )
    model.load_state_dict(result.arrays.to_torch_state_dict())
    accuracy = evaluate(model, test_x, test_y, "classification", 3)["accuracy"]
    assert accuracy > 0.93, accuracy  # the blobs' Bayes rate is about 0.98


def _linear_factory(scale: float, target: float, state: RecordDict) -> Answer:
    """A factory whose rows say ``y = scale * target`` at ``x = scale``: its own optimum is
    ``w = target`` and its curvature ``scale**2``. Plain SGD, 10 full-batch local steps."""
    x = np.full((50, 1), scale, np.float32)
    y = np.full(50, scale * target, np.float32)

    def answer(message: Message) -> Message:
        model = torch.nn.Linear(1, 1, bias=False)
        model.load_state_dict(message.content["arrays"].to_torch_state_dict())  # type: ignore[union-attr]
        if message.metadata.message_type != MessageType.TRAIN:
            metrics = MetricRecord({"num-examples": len(x)})
            return Message(RecordDict({"metrics": metrics}), reply_to=message)
        control = from_message(message.content, model, state)
        config = TrainConfig(epochs=10, batch_size=50, learning_rate=0.02, optimizer="sgd")
        train(model, x, y, "regression", config, on_gradients=control)
        content = RecordDict(
            {
                "arrays": ArrayRecord(model.state_dict()),
                "metrics": MetricRecord({"num-examples": len(x)}),
            }
        )
        if control is not None:
            content[SCAFFOLD_CLIENT] = finish(control, state)
        return Message(content, reply_to=message)

    return answer


def _drift(name: str) -> float:
    """How far the federated model ends from the pooled least-squares optimum, when one
    factory's optimum is 0 with curvature 1 and the other's 1 with curvature 9 (pooled: 0.9)."""
    grid = Grid4Tests(
        {
            1: _linear_factory(1.0, 0.0, RecordDict()),
            2: _linear_factory(3.0, 1.0, RecordDict()),
        }
    )
    start = ArrayRecord({"weight": Array(np.zeros((1, 1), np.float32))})
    result = build_strategy(name, {}, min_factories=2).start(grid, start, num_rounds=40, timeout=10)
    return abs(float(result.arrays["weight"].numpy().item()) - 0.9)


def test_scaffold_removes_the_drift_that_fedavg_keeps() -> None:
    """Many local steps on factories with different optima: FedAvg settles between the two
    optima weighted by rows, not curvature (client drift); SCAFFOLD's correction brings it
    to the pooled optimum, the model that training on everyone's rows would give."""
    fedavg, scaffold = _drift("fedavg"), _drift("scaffold")
    assert fedavg > 0.1, fedavg
    assert scaffold < 0.02, scaffold
