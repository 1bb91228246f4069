"""TEP fault diagnosis across plants: how close federating gets to pooling everyone's data.

Windows over each run (``series = run``, ordered by time) with FedPark's temporal CNN; the
standard labels (a faulty run is normal before the fault's onset); 48 h runs with the fault
from hour 8. Two settings (``--setting``):

- ``literature``: 4 plants, all in operating mode 1, the 18 observable faults split between
  them (each fault seen by 2 plants, none by all); test set: a 48 h run of normal operation
  and of every fault in mode 1 (seeds no plant used).
- ``park``: 5 plants, each in its own mode (1-5) with its own faults (each seen by 2 plants);
  test set: normal operation and every fault in every plant's mode (24 h runs, fault from
  hour 8: a park's test set is five modes wide).

Arms, all with the same model, optimizer and local work per round: each plant alone
(local-only: it cannot name faults it never saw), centralized (one model on the pooled rows:
the upper bound no factory would accept), and FedPark per strategy: FedPark's ServerApp and
ClientApp (contract check and validation included) on Flower's simulation engine, or with
``--engine deployment`` on a real SuperLink and SuperNodes over gRPC (FedPark arms only).

Reports macro-F1 over normal + 18 faults, accuracy, and per fault the classification rate,
the detection rate and the false-alarm rate (the measures TEP papers use): medians over
``--repeats`` seeds with their spread. Writes ``tep_<setting>.json`` and ``.png``.

    python benchmarks/learning/tep_diagnosis.py --setting literature --out docs/results
    python benchmarks/learning/tep_diagnosis.py --setting park --out docs/results
    python benchmarks/learning/tep_diagnosis.py --quick                     # CI smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from harness import (
    Metrics,
    Study,
    parse_strategies,
    plot_curves,
    run_repeats,
    save_results,
    scratch,
    spread,
    summarize,
)
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from fedpark.datasets import tep
from fedpark.experiments.protocol import ModelSettings, TrainSettings

console = Console()
DEFAULT_ROUNDS = 10  # other round counts write tep_<setting>_<n>rounds.*
SETTINGS = {
    # plants, modes, test-run hours, FedPark strategies compared
    "literature": (4, ("mode1",), 48.0, ["fedavg", "scaffold"]),
    "park": (
        5,
        tep.MODES[:5],
        24.0,
        [
            "fedavg",
            "fedprox:proximal_mu=0.01",
            "fedavgm:server_momentum=0.9,server_learning_rate=0.3",
            "scaffold",
        ],
    ),
}


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--setting",
        choices=sorted(SETTINGS),
        default="literature",
        help="literature: 4 plants in mode 1, faults split; park: 5 plants, 5 modes",
    )
    parser.add_argument("--data", type=Path, help="output of `fedpark data tep` (else generated)")
    parser.add_argument(
        "--engine",
        choices=("simulation", "deployment"),
        default="simulation",
        help="FedPark arms on Flower's simulation engine or on a SuperLink and SuperNodes",
    )
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--local-epochs", type=int, default=1)
    parser.add_argument("--model", choices=("tcnn", "mlp"), default="tcnn")
    parser.add_argument("--window", type=int, default=32, help="rows per window (tcnn)")
    parser.add_argument("--hidden", default="32,32,32", help="channels (tcnn) or widths (mlp)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument(
        "--normalization",
        choices=("pooled", "factory"),
        default="pooled",
        help="standardize with statistics pooled over the plants, or each plant's own "
        "(then each plant is scored on the test runs of its own operating mode)",
    )
    parser.add_argument(
        "--strategy",
        action="append",
        dest="strategies",
        help="NAME[:param=value,...], repeatable [the setting's list]",
    )
    parser.add_argument("--repeats", type=int, default=3, help="seeds; medians are reported")
    parser.add_argument("--out", type=Path, help="folder for tep_<setting>.json and .png")
    parser.add_argument(
        "--federated-only",
        action="store_true",
        help="only the FedPark arms (e.g. --engine deployment beside a simulation run)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny run for CI")
    args = parser.parse_args(argv)
    args.plants, args.modes, args.test_hours, default = SETTINGS[args.setting]
    args.hours, args.onset, args.strategies = 48.0, 8.0, args.strategies or default
    if args.quick:
        args.plants, args.hours, args.onset, args.test_hours = 3, 4.0, 1.0, 4.0
        args.rounds, args.repeats, args.hidden, args.window = 2, 1, "8", 8
    return args


def _data(args: argparse.Namespace) -> Path:
    if args.data:
        return Path(args.data)
    folder = scratch("fedpark-tep-")
    plants = tep.plants(args.plants, modes=args.modes, overlap=2)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulating TEP runs", total=tep.runs_needed(plants))
        tep.generate(
            folder,
            plants,
            hours=args.hours,
            onset=args.onset,
            test_hours=args.test_hours,
            progress=lambda n: progress.advance(task, n),
        )
    return folder


def _test_split(data: Path) -> dict[str, Path]:
    """Each plant's share of the test set: the test runs of its own operating mode (a plant
    standardizing with its own statistics meets faults at its own operating point)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    folder = scratch("fedpark-tep-test-")
    test = pq.read_table(data / "test" / "tep.parquet")
    plants = json.loads((data / "plants.json").read_text())
    modes = [plant["mode"] for plant in plants]
    tested = set(test["operating_mode"].unique().to_pylist())
    if len(set(modes)) != len(modes) or set(modes) != tested:
        # each test row must be scored once, as the plant running its mode meets it
        raise SystemExit(f"--normalization factory needs one plant per tested mode: {modes}")
    split = {}
    for plant in plants:
        rows = test.filter(pc.equal(test["operating_mode"], plant["mode"]))
        if not rows.num_rows:
            raise SystemExit(f"the test set has no runs in {plant['mode']} ({plant['name']})")
        split[plant["name"]] = folder / f"{plant['name']}.parquet"
        pq.write_table(rows, split[plant["name"]])
    return split


def open_study(
    data: Path,
    plants: list[str],
    normalization: str,
    *,
    model: str = "tcnn",
    hidden: tuple[int, ...] = (32, 32, 32),
    window: int = 32,
    local_epochs: int = 1,
    lr: float = 3e-3,
) -> Study:
    """The plants' files in ``data`` as this benchmark trains and scores them (its other
    scripts, ``tep_pairs.py`` and ``tep_gap.py``, take the same study)."""
    study = Study.open(
        data / "contract.json",
        {name: data / name / "tep.parquet" for name in plants},
        data / "test" / "tep.parquet",
        ModelSettings(
            kind=model, hidden=hidden, window=window, series="run", normalization=normalization
        ),
        TrainSettings(epochs=local_epochs, batch_size=64, learning_rate=lr),
    )
    study.per_class = True
    if normalization == "factory":
        study.test_split = _test_split(data)
    return study


def print_table(table: dict[str, Metrics], spreads: dict[str, tuple[float, float]]) -> None:
    out = Table("arm", "macro-F1 (median)", "seeds min-max", "accuracy", "false alarms")
    for arm, v in table.items():
        low, high = spreads.get(arm, (v["macro_f1"], v["macro_f1"]))
        out.add_row(
            arm,
            f"{100 * v['macro_f1']:.1f}",
            f"{100 * low:.1f}-{100 * high:.1f}",
            f"{100 * v['accuracy']:.1f}",
            f"{100 * v['false_alarm']:.1f}",
        )
    console.print(out)
    if "centralized" not in table:
        return
    central = 100 * table["centralized"]["macro_f1"]
    for arm in (a for a in table if a.startswith("FedPark")):
        fed = 100 * table[arm]["macro_f1"]
        console.print(
            f"{arm}: {fed - central:+.1f} points vs centralized (target >= -2.0: "
            f"{'met' if fed - central >= -2 else 'NOT met'})"
        )


def fault_table(runs: list[dict[str, list[Metrics]]], classes: list[int]) -> dict[str, Metrics]:
    """Per fault and arm: median classification and detection rate over the seeds."""
    arms = [a for a in runs[0] if not a.startswith("local")]
    rows: dict[str, Metrics] = {}
    for index, fault in enumerate(classes):
        row: Metrics = {}
        for arm in arms:
            for measure in ("recall", "detection"):
                values = [r[arm][-1].get(f"{measure}/{index}") for r in runs]
                found = [v for v in values if v is not None]
                if found:
                    row[f"{arm} {measure}"] = statistics.median(found)
        rows[f"IDV({fault})" if fault else "normal"] = row
    return rows


def print_faults(rows: dict[str, Metrics]) -> None:
    arms = sorted({k.rsplit(" ", 1)[0] for row in rows.values() for k in row})
    out = Table("class", *(f"{arm}\nclassified / detected" for arm in arms))
    for name, row in rows.items():
        cells = []
        for arm in arms:
            recall, detect = row.get(f"{arm} recall"), row.get(f"{arm} detection")
            cell = "-" if recall is None else f"{100 * recall:.0f}"
            cells.append(cell + ("" if detect is None else f" / {100 * detect:.0f}"))
        out.add_row(name, *cells)
    console.print(out)


def plot_faults(rows: dict[str, Metrics], path: Path, title: str) -> None:
    """Classification rate per class and arm (median over seeds): one group of bars each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    arms = sorted({k.rsplit(" ", 1)[0] for row in rows.values() for k in row})
    names = list(rows)
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / max(len(arms), 1)
    for i, arm in enumerate(arms):
        values = [100 * rows[n].get(f"{arm} recall", float("nan")) for n in names]
        ax.bar(np.arange(len(names)) + i * width, values, width, label=arm)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=45, ha="right")
    ax.set_ylabel("classified correctly (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=len(arms))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    started = time.time()
    data = _data(args)
    plants = sorted(
        p.name for p in data.iterdir() if (p / "tep.parquet").exists() and p.name != "test"
    )
    study = open_study(
        data,
        plants,
        args.normalization,
        model=args.model,
        hidden=tuple(int(h) for h in args.hidden.split(",")),
        window=args.window,
        local_epochs=args.local_epochs,
        lr=args.lr,
    )
    runs = run_repeats(
        study,
        rounds=args.rounds,
        repeats=args.repeats,
        strategies=parse_strategies(args.strategies),
        console=console,
        engine=args.engine,
        baselines=not args.federated_only,
    )
    table = summarize(runs, ["macro_f1", "accuracy", "false_alarm"])
    print_table(table, spread(runs, "macro_f1"))
    classes = [int(c) for c in study.plan.classes or ()]
    faults = fault_table(runs, classes)
    print_faults(faults)
    console.print(
        f"{args.setting}: {len(plants)} plants, {args.rounds} rounds, {args.repeats} seed(s), "
        f"engine {args.engine}, {time.time() - started:.0f} s"
    )
    if args.quick:
        console.print("--quick is a smoke run (tiny runs and model): its figures mean nothing")
    if args.out:
        name = f"tep_{args.setting}" + ("_deployment" if args.engine == "deployment" else "")
        name += "_factory" if args.normalization == "factory" else ""
        name += f"_{args.rounds}rounds" if args.rounds != DEFAULT_ROUNDS else ""
        # FedPark arms alone (a deployment run always is): never over a file with baselines
        name += "_federated" if args.federated_only and args.engine == "simulation" else ""
        path = save_results(args.out, name, args, table, runs)
        result = json.loads(path.read_text())
        result["faults"] = faults
        result["plants"] = json.loads((data / "plants.json").read_text())
        path.write_text(json.dumps(result, indent=1))
        plot_curves(
            runs,
            "macro_f1",
            args.out / f"{name}.png",
            title=f"TEP fault diagnosis, {args.setting} setting ({args.model}, {args.engine})",
            ylabel="macro-F1 on held-out test set (%)",
            scale=100,
        )
        plot_faults(
            faults,
            args.out / f"{name}_faults.png",
            f"TEP {args.setting} setting: each class of the test set, "
            f"median of {args.repeats} seeds",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
