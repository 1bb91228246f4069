"""Aggregating N model updates: FedPark's path vs Flower's aggregation vs the memory floor.

FedPark aggregates with Flower's own strategies; its path adds what FedPark does each round:
sorting and recording every factory's reply under the contract's k (ContractStrategy, which
wraps Flower's FedAvg) and serializing the new global model as a
safetensors checkpoint. The floor is a bare numpy weighted sum over the same float32 arrays,
which is bound by memory bandwidth.

    python benchmarks/aggregation.py --updates 10 --params 10000000 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords
from flwr.supercore.task_identity import TaskIdentity

from fedpark.experiments.contract_strategy import ContractStrategy
from fedpark.experiments.protocol import RoundReport
from fedpark.experiments.reporting import DirectoryReporter
from fedpark.experiments.weights import to_safetensors

LAYERS = 8  # a model's parameters spread over a few tensors, as in practice


def updates(n: int, params: int, seed: int = 0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    size = params // LAYERS
    return [[rng.standard_normal(size, dtype=np.float32) for _ in range(LAYERS)] for _ in range(n)]


def replies(arrays: list[list[np.ndarray]]) -> list[Message]:
    # Messages normally live inside a run; outside one, Flower needs to be told which.
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    out = []
    for i, layers in enumerate(arrays):
        instruction = Message(RecordDict(), dst_node_id=i + 1, message_type=MessageType.TRAIN)
        content = RecordDict(
            {
                "arrays": ArrayRecord(layers),
                "metrics": MetricRecord({"train_loss": 0.1, "num-examples": 100 + i}),
                "fedpark": ConfigRecord({"org": f"factory-{i}"}),
            }
        )
        out.append(Message(content, reply_to=instruction))
    return out


def numpy_floor(arrays: list[list[np.ndarray]], weights: np.ndarray) -> list[np.ndarray]:
    """The weighted sum with no allocation in the loop: each update is read once."""
    total = [np.multiply(layer, np.float32(weights[0])) for layer in arrays[0]]
    scratch = np.empty_like(arrays[0][0])
    for update, w in zip(arrays[1:], weights[1:], strict=True):
        for acc, layer in zip(total, update, strict=True):
            np.multiply(layer, np.float32(w), out=scratch)
            np.add(acc, scratch, out=acc)
    return total


class _NullReporter(DirectoryReporter):
    def __init__(self) -> None:
        self.bytes = 0

    def round(self, report: RoundReport, checkpoint: bytes) -> None:
        self.bytes = len(checkpoint)


def time_it(fn: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def quiet_flower_logs() -> None:
    import logging

    logging.getLogger("flwr").setLevel(logging.WARNING)


def main() -> None:
    quiet_flower_logs()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--params", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    arrays = updates(args.updates, args.params)
    messages = replies(arrays)
    weights = np.array([100 + i for i in range(args.updates)], dtype=np.float64)
    weights /= weights.sum()

    def flower() -> object:
        return aggregate_arrayrecords([m.content for m in messages], "num-examples")

    def fedpark() -> object:
        inner = FedAvg(min_train_nodes=1, min_available_nodes=1, min_evaluate_nodes=1)
        strategy = ContractStrategy(inner, _NullReporter(), min_factories=1, columns=set())
        aggregated, _ = strategy.aggregate_train(1, messages)
        assert aggregated is not None
        strategy.end_of_round(1, aggregated)  # the per-round safetensors checkpoint
        return aggregated

    results = {
        "numpy weighted sum (floor)": time_it(lambda: numpy_floor(arrays, weights), args.runs),
        "Flower aggregate_arrayrecords": time_it(flower, args.runs),
        "FedPark (FedAvg under k + recording + checkpoint)": time_it(fedpark, args.runs),
    }
    floor = statistics.median(results["numpy weighted sum (floor)"])
    gib = args.updates * args.params * 4 / 2**30
    print(
        f"{args.updates} updates x {args.params:,} float32 parameters ({gib:.2f} GiB read), "
        f"{args.runs} runs"
    )
    print(f"{'path':<52}{'median s':>10}{'min s':>8}{'GiB/s':>8}{'x floor':>9}")
    for name, times in results.items():
        median = statistics.median(times)
        print(
            f"{name:<52}{median:>10.3f}{min(times):>8.3f}{gib / median:>8.2f}{median / floor:>9.2f}"
        )
    assert to_safetensors  # the checkpoint format FedPark stores


if __name__ == "__main__":
    main()
