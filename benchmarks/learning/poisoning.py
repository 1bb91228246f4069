"""Poisoning: one of five factories sends poisoned updates; FedAvg breaks, FedMedian and Krum
hold.

Five Tennessee Eastman plants (``fedpark.datasets.tep``, all in mode 1, each having seen the
same five step faults IDV 1, 2, 4, 6, 7, so honest updates agree) train FedPark's fault
classifier (MLP) with FedPark's apps on Flower's simulation engine. One plant ("plant-5") runs
the same honest training and then reports a *boosted sign flip* of its update,
``w = g - scale * (local - g)`` (the plainest form of the model-poisoning attacks of Baruch
et al. 2019 and Fang et al. 2020; ``--scale`` 10). Every strategy runs clean and attacked with
the same seed; the global model is scored on held-out runs of every fault after every round.

Positive control: attacked FedAvg must fall visibly. The claim: attacked FedMedian and Krum
stay within 2 points of their clean runs.

    python benchmarks/learning/poisoning.py --out docs/results
    python benchmarks/learning/poisoning.py --quick            # CI
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from harness import (
    Study,
    run_fedpark,
    save_results,
    score_checkpoints,
    scratch,
)
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from fedpark.datasets import tep
from fedpark.experiments.protocol import ModelSettings, TrainSettings

console = Console()
ATTACKER = "plant-5"
FAULTS = (1, 2, 4, 6, 7)
STRATEGIES = {"fedavg": {}, "fedmedian": {}, "krum": {"num_malicious_nodes": 1.0}}


def sign_flip(scale: float) -> Any:
    """The attack: report the update reversed and ``scale`` times as large."""
    from flwr.app import Array, ArrayRecord

    def attack(incoming: Any, reply: Any) -> Any:
        if reply.has_error():
            return reply
        sent = incoming.content["arrays"]
        honest = reply.content["arrays"]
        poisoned = {}
        for name in honest:
            g = sent[name].numpy()
            local = honest[name].numpy()
            poisoned[name] = Array((g - scale * (local - g)).astype(local.dtype))
        reply.content["arrays"] = ArrayRecord(array_dict=poisoned)
        return reply

    return attack


def write_data(folder: Path, hours: float, seed: int) -> Study:
    plant_list = tep.plants(5, faults=FAULTS, overlap=5, modes=["mode1"], seed=seed)
    data = tep.generate(folder, plant_list, hours=hours, onset=0.5, normal_runs=1)
    assert data.test_file is not None
    return Study.open(
        data.contract_file,
        data.plant_files,
        data.test_file,
        ModelSettings(kind="mlp", task="classification", hidden=[64, 64], dropout=0.0),
        TrainSettings(epochs=2, batch_size=64, learning_rate=2e-3),
    )


def run(args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    work = scratch("fedpark-poisoning-")
    study = write_data(work / "data", args.hours, args.seed)
    test = study.test_arrays()
    curves: dict[str, list[dict[str, float]]] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("runs", total=2 * len(STRATEGIES) * args.rounds)
        for strategy, params in STRATEGIES.items():
            for attacked in (False, True):
                arm = f"{strategy} {'attacked' if attacked else 'clean'}"
                checkpoints = run_fedpark(
                    study,
                    strategy=strategy,
                    strategy_params=params,
                    rounds=args.rounds,
                    seed=args.seed,
                    work=work / arm.replace(" ", "-"),
                    on_round=lambda _: progress.advance(task),
                    attack=sign_flip(args.scale) if attacked else None,
                    attackers=frozenset({ATTACKER}),
                )
                curves[arm] = score_checkpoints(study, checkpoints, test)
    return curves


def print_table(curves: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    table = Table("strategy", "clean accuracy", "attacked accuracy", "change (points)")
    summary = {}
    for strategy in STRATEGIES:
        clean = 100 * curves[f"{strategy} clean"][-1]["accuracy"]
        attacked = 100 * curves[f"{strategy} attacked"][-1]["accuracy"]
        summary[strategy] = {"clean": clean, "attacked": attacked, "change": attacked - clean}
        table.add_row(strategy, f"{clean:.1f}", f"{attacked:.1f}", f"{attacked - clean:+.1f}")
    console.print(table)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--hours", type=float, default=8.0, help="length of each plant run")
    parser.add_argument("--scale", type=float, default=10.0, help="boost of the sign flip")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="folder for poisoning.json")
    parser.add_argument("--quick", action="store_true", help="tiny run for CI")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.hours = 4, 3.0
    started = time.time()
    curves = run(args)
    summary = print_table(curves)
    console.print(
        f"5 plants ({ATTACKER} attacks), {args.rounds} rounds, runs of {args.hours:g} h, "
        f"scale {args.scale:g}, seed {args.seed}; {time.time() - started:.0f} s"
    )
    if args.out:
        save_results(args.out, "poisoning", args, summary, [curves])
    print(json.dumps({"summary": summary}))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
