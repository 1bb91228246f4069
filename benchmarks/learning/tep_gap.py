"""TEP park setting: where federated averaging's gap to pooling everyone's rows comes from.

FedAvg written out in plain torch on the same arrays ``tep_diagnosis.py`` trains on (each
plant's windows standardized as its ClientApp does, the same model, Adam, batch 64, one local
epoch per round, updates weighted by rows), so that one thing at a time can change:

- ``centralized``: one model on the pooled rows, one epoch per round (the upper bound);
- ``fedavg plants``: FedAvg over the plants' own rows (the setting; it should land near
  FedPark's FedAvg arm, which checks the control);
- ``fedavg iid``: the same rows dealt to the same number of factories at random, each as
  many as a plant has (the data's heterogeneity removed, the averaging kept);
- ``fedavg plants, adam kept``: as ``fedavg plants``, each factory keeping its optimizer's
  moments from round to round instead of starting afresh (the ClientApp starts afresh).

    python benchmarks/learning/tep_gap.py --data PLANTS --normalization factory --rounds 20

``PLANTS``: the folder ``fedpark data tep`` (or ``tep_diagnosis.py``'s scratch folder) holds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from harness import Study, plot_curves, train_alone
from rich.console import Console
from rich.table import Table
from tep_diagnosis import open_study
from torch import nn

from fedpark.experiments.training import TrainConfig, make_optimizer

console = Console()
Shards = list[tuple[np.ndarray, np.ndarray]]


def _epoch(
    model: nn.Module, x: np.ndarray, y: np.ndarray, optimizer: torch.optim.Optimizer, seed: int
) -> None:
    """One epoch like FedPark's ``training.train`` (shuffled, batch 64; dropout draws from
    torch's global generator, seeded once per arm)."""
    inputs, targets = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long)
    order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed))
    criterion = nn.CrossEntropyLoss()
    model.train()
    for start in range(0, len(order), 64):
        batch = order[start : start + 64]
        optimizer.zero_grad()
        criterion(model(inputs[batch]), targets[batch]).backward()
        optimizer.step()


def fedavg(
    study: Study,
    shards: Shards,
    rounds: int,
    seed: int,
    keep_adam: bool,
    score: Callable[[nn.Module], float],
) -> list[float]:
    """FedAvg over ``shards``, every factory in every round; macro-F1 after each round."""
    config = TrainConfig(epochs=1, batch_size=64, learning_rate=study.train.learning_rate)
    torch.manual_seed(seed)
    global_model = study.new_model(seed)
    locals_ = [study.new_model(seed) for _ in shards]
    optimizers = [make_optimizer(m, config) for m in locals_]
    weights = np.array([len(x) for x, _ in shards], dtype=np.float64)
    weights /= weights.sum()
    history = []
    for rnd in range(rounds):
        states = []
        for i, (model, (x, y)) in enumerate(zip(locals_, shards, strict=True)):
            model.load_state_dict(global_model.state_dict())
            if not keep_adam:
                optimizers[i] = make_optimizer(model, config)
            _epoch(model, x, y, optimizers[i], seed + 1000 * rnd + i)
            states.append(model.state_dict())
        averaged = {  # weighted by rows; a counter buffer (not in this model) is kept as is
            key: sum(w * s[key] for w, s in zip(weights, states, strict=True))
            if states[0][key].is_floating_point()
            else states[0][key]
            for key in states[0]
        }
        global_model.load_state_dict(averaged)
        history.append(score(global_model))
    return history


def save(curves: dict[str, list[float]], args: argparse.Namespace, out: Path) -> None:
    """The curves as JSON and as a plot (the harness' plot: one line per arm)."""
    out.mkdir(parents=True, exist_ok=True)
    settings = {key: str(value) for key, value in vars(args).items()}
    path = out / "tep_park_gap.json"
    record = {"args": settings, "unit": "macro-F1 in percent", "curves": curves}
    path.write_text(json.dumps(record, indent=1))
    runs = [{arm: [{"macro_f1": value} for value in curve] for arm, curve in curves.items()}]
    plot_curves(
        runs,
        "macro_f1",
        out / "tep_park_gap.png",
        title=f"TEP park setting: FedAvg's gap to pooling, in plain torch (seed {args.seed})",
        ylabel="macro-F1 on the test set",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--normalization", choices=("pooled", "factory"), default="factory")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="folder for tep_park_gap.json and .png")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    plants = json.loads((args.data / "plants.json").read_text())
    study = open_study(args.data, [p["name"] for p in plants], args.normalization)
    test = study.test_arrays()

    def score(model: nn.Module) -> float:
        return 100 * study.score(model, *test)["macro_f1"]

    shards: Shards = [study.train_arrays(p["name"]) for p in plants]
    x = np.concatenate([a for a, _ in shards])
    y = np.concatenate([b for _, b in shards])
    deal = np.random.default_rng(args.seed).permutation(len(x))
    bounds = np.cumsum([len(a) for a, _ in shards])[:-1]
    iid: Shards = [(x[part], y[part]) for part in np.split(deal, bounds)]
    curves: dict[str, list[float]] = {}
    started = time.time()
    central = train_alone(study, x, y, test, blocks=args.rounds, seed=args.seed)
    curves["centralized"] = [100 * m["macro_f1"] for m in central]
    console.print(f"centralized done ({time.time() - started:.0f} s)")
    for name, parts, keep in (
        ("fedavg plants", shards, False),
        ("fedavg iid", iid, False),
        ("fedavg plants, adam kept", shards, True),
    ):
        curves[name] = fedavg(study, parts, args.rounds, args.seed, keep, score)
        console.print(f"{name} done ({time.time() - started:.0f} s)")
    marks = sorted({min(r, args.rounds) for r in (5, 10, 15, args.rounds)})
    table = Table("arm", *(f"round {r}" for r in marks), "best")
    for name, curve in curves.items():
        table.add_row(name, *(f"{curve[r - 1]:.1f}" for r in marks), f"{max(curve):.1f}")
    console.print(table)
    console.print(
        f"macro-F1 on the test set, seed {args.seed}, {len(plants)} plants, "
        f"normalization {args.normalization}, {time.time() - started:.0f} s"
    )
    if args.out:
        save(curves, args, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
