"""A factory's local training per round: FedPark's ``train`` vs the textbook PyTorch loop.

Both train the same MLP (as ``fedpark experiment launch`` builds one) on the same rows, with
Adam, batches of 64, in one process on the CPU. The peer is the loop every tutorial writes:
``torch.optim.Adam`` with its defaults, which on the CPU steps each parameter tensor from a
Python loop; FedPark's ``train`` steps them all in one fused kernel and seeds everything from
the round's seed. Printed: the median seconds of ``--runs`` rounds each, and the ratio.

    python benchmarks/local_training.py --rows 4000 --features 52 --epochs 2 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from fedpark.experiments.models import ModelSpec, build_model
from fedpark.experiments.training import TrainConfig, train


def data(rows: int, features: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, features)).astype(np.float32)
    y = (x[:, :classes].argmax(1) + (x[:, -1] > 1)).clip(0, classes - 1).astype(np.int64)
    return x, y


def model(features: int, classes: int, hidden: tuple[int, ...]) -> nn.Module:
    torch.manual_seed(0)
    spec = ModelSpec(kind="mlp", task="classification", hidden=hidden)
    return build_model(spec, features, classes)


def textbook(net: nn.Module, x: np.ndarray, y: np.ndarray, config: TrainConfig) -> float:
    """The peer: the loop of PyTorch's tutorials, Adam with its defaults."""
    inputs, targets = torch.as_tensor(x), torch.as_tensor(y)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    criterion = nn.CrossEntropyLoss()
    net.train()
    loss = torch.zeros(())
    for _ in range(config.epochs):
        order = torch.randperm(len(inputs))
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimizer.zero_grad()
            loss = criterion(net(inputs[batch]), targets[batch])
            loss.backward()
            optimizer.step()
    return float(loss.detach())


def median_seconds(run: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000, help="a factory's training rows")
    parser.add_argument("--features", type=int, default=52, help="TEP has 52 measurements")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--hidden", default="64,64", help="hidden layer widths")
    parser.add_argument("--epochs", type=int, default=2, help="local epochs per round")
    parser.add_argument("--runs", type=int, default=5, help="rounds timed; the median shown")
    args = parser.parse_args()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    x, y = data(args.rows, args.features, args.classes)
    config = TrainConfig(epochs=args.epochs, batch_size=64, learning_rate=3e-3)
    # Warm both paths once: torch imports its compiler stack at the first optimizer.
    train(model(args.features, args.classes, hidden), x, y, "classification", config)
    textbook(model(args.features, args.classes, hidden), x, y, config)
    ours = median_seconds(
        lambda: train(model(args.features, args.classes, hidden), x, y, "classification", config),
        args.runs,
    )
    peer = median_seconds(
        lambda: textbook(model(args.features, args.classes, hidden), x, y, config), args.runs
    )
    steps = args.epochs * -(-args.rows // 64)
    print(
        f"MLP {args.hidden}, {args.rows} rows x {args.features} features, {args.epochs} epochs "
        f"of batch 64 ({steps} steps), {torch.get_num_threads()} threads, median of {args.runs}"
    )
    print(f"{'path':<40} {'s / round':>10} {'ms / step':>10}")
    for name, seconds in (("FedPark train (fused Adam, seeded)", ours), ("textbook loop", peer)):
        print(f"{name:<40} {seconds:>10.3f} {1000 * seconds / steps:>10.3f}")
    print(f"FedPark / textbook: {ours / peer:.2f}x the time")


if __name__ == "__main__":
    main()
