"""NIID-Bench Table 3 for Fashion-MNIST, rerun with Flower's simulation engine.

Li et al., "Federated Learning on Non-IID Data Silos: An Experimental Study" (ICDE 2022),
Table 3, FMNIST rows: the global model's test accuracy after federated training with FedAvg
and FedProx over IID, Dirichlet label skew and #C=k label skew. The setup is the paper's
(and its reference code's, ``scripts/image-data-without-noise.sh``):

* the "simple CNN" (``fedpark.experiments.models.SimpleCNN``), pixels scaled to [0, 1];
* 10 clients, all of them in every round, 50 rounds, 10 local epochs;
* SGD, learning rate 0.01, momentum 0.9, batch 64, weight decay 1e-5 (the code's default);
* FedProx mu 0.01: the paper tuned mu over {0.001, 0.01, 0.1, 1} and reports the best;
* partitions: IID ("homo"), Dir(0.5) ("noniid-labeldir"), #C=1, #C=2, #C=3
  (``fedpark.datasets.partition``);
* the global model scored on the whole 10k test set after every round, server side
  (Flower's ``evaluate_fn``).

The paper reports the mean of three runs (seeds 0, 1, 2); one run here uses one ``--seed``.
The "setup matches" column says whether a run used the paper's settings; ``--quick`` never does.

Each virtual client reads its partition (chosen by ``context.node_config["partition-id"]``)
from Ray's object store. Budget: one torch thread trains the CNN at ~4.7k samples/s, so the
full setup costs ~6k CPU-seconds per configuration (10 configurations in all); ``--threads``
runs that many clients at once.

    python benchmarks/learning/niid_bench.py --quick                 # CI smoke run, < 2 min
    python benchmarks/learning/niid_bench.py --rounds 5 --local-epochs 1 --partitions iid
    python benchmarks/learning/niid_bench.py --threads 16 --out results/niid   # the paper's

Needs Debian's ``dataset-fashion-mnist`` package (or ``FEDPARK_FASHION_MNIST``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")  # no network call per simulation
os.environ.setdefault("RAY_DEDUP_LOGS", "1")

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fedpark.datasets import fashion_mnist as fm
from fedpark.datasets.partition import classes_per_client, dirichlet_label, iid
from fedpark.experiments.models import SimpleCNN
from fedpark.experiments.training import TrainConfig, evaluate, train

console = Console()

PARTITIONS = {"iid": "IID", "dirichlet": "Dir(0.5)", "c1": "#C=1", "c2": "#C=2", "c3": "#C=3"}
STRATEGIES = {"fedavg": "FedAvg", "fedprox": "FedProx"}
# NIID-Bench Table 3, FMNIST, 10 clients: mean test accuracy (%) of three runs.
PAPER = {
    ("iid", "fedavg"): 89.0,
    ("dirichlet", "fedavg"): 88.4,
    ("c1", "fedavg"): 10.0,
    ("c2", "fedavg"): 81.0,
    ("c3", "fedavg"): 83.2,
    ("iid", "fedprox"): 89.5,
    ("dirichlet", "fedprox"): 88.6,
    ("c1", "fedprox"): 38.0,
    ("c2", "fedprox"): 78.8,
    ("c3", "fedprox"): 82.5,
}
QUICK_CONFIGS = [("iid", "fedavg"), ("dirichlet", "fedprox")]


@dataclass(frozen=True)
class Setup:
    clients: int = 10
    rounds: int = 50
    local_epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-5
    mu: float = 0.01
    dirichlet_alpha: float = 0.5
    train_samples: int = 60_000
    test_samples: int = 10_000


PAPER_SETUP = Setup()


@dataclass
class Outcome:
    partition: str
    strategy: str
    accuracy: list[float]  # round 0 (the initial model) to the last round
    wall_s: float
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.error is None


def split(labels: np.ndarray, partition: str, setup: Setup, seed: int) -> list[np.ndarray]:
    if partition == "iid":
        return iid(len(labels), setup.clients, seed)
    if partition == "dirichlet":
        return dirichlet_label(labels, setup.clients, setup.dirichlet_alpha, seed)
    return classes_per_client(labels, setup.clients, int(partition[1:]), seed)


def images(x: np.ndarray) -> np.ndarray:
    """uint8 [n, 28, 28] → float32 [n, 1, 28, 28] in [0, 1] (torchvision's ToTensor)."""
    return (x.astype(np.float32) / 255.0)[:, None, :, :]


def run_config(
    partition: str,
    strategy_name: str,
    setup: Setup,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    args: argparse.Namespace,
    progress: Progress,
) -> Outcome:
    """One federated run under Flower's simulation engine (Ray), Ray shut down afterwards."""
    import ray
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg, FedProx
    from flwr.simulation import run_simulation

    x_train, y_train, x_test, y_test = data
    parts = split(y_train, partition, setup, args.seed)
    test_x = images(x_test)
    label = f"{PARTITIONS[partition]} {STRATEGIES[strategy_name]}"
    task = progress.add_task(label, total=setup.rounds)
    accuracy: list[float] = []
    missed: list[str] = []
    started = time.perf_counter()

    ray.init(
        num_cpus=args.threads,
        num_gpus=0,
        include_dashboard=False,
        log_to_driver=args.verbose,
        logging_level=logging.INFO if args.verbose else logging.WARNING,
    )
    try:
        # Each client's rows go to the object store once; the ClientApp (pickled into every
        # message) carries only these references.
        shards = [ray.put((x_train[p], y_train[p].astype(np.int64))) for p in parts]

        client = ClientApp()

        @client.train()
        def local_training(msg: Message, context: Context) -> Message:
            torch.set_num_threads(1)  # one CPU per client actor
            client_id = int(context.node_config["partition-id"])
            x, y = ray.get(shards[client_id])
            config = msg.content.config_records["config"]

            def number(key: str, default: float | None = None) -> float:
                value = config.get(key, default)
                if not isinstance(value, int | float):
                    raise ValueError(f"train config {key!r} is {value!r}, not a number")
                return float(value)

            model = SimpleCNN()
            model.load_state_dict(msg.content.array_records["arrays"].to_torch_state_dict())
            loss = train(
                model,
                images(x),
                y,
                "classification",
                TrainConfig(
                    epochs=int(number("local-epochs")),
                    batch_size=int(number("batch-size")),
                    learning_rate=number("lr"),
                    optimizer="sgd",
                    momentum=number("momentum"),
                    weight_decay=number("weight-decay"),
                    proximal_mu=number("proximal-mu", 0.0),  # FedProx sets it
                    # Its own batch order per client and round, reproducible from --seed.
                    seed=(int(number("seed")) * 1000 + int(number("server-round"))) * 1000
                    + client_id,
                ),
            )
            reply = RecordDict(
                {
                    "arrays": ArrayRecord(model.state_dict()),
                    "metrics": MetricRecord({"train_loss": loss, "num-examples": len(x)}),
                }
            )
            return Message(content=reply, reply_to=msg)

        def global_evaluation(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            model = SimpleCNN()
            model.load_state_dict(arrays.to_torch_state_dict())
            metrics = evaluate(model, test_x, y_test, "classification", n_classes=10)
            accuracy.append(metrics["accuracy"])
            progress.update(
                task,
                completed=server_round,
                description=f"{label:<16} acc {100 * metrics['accuracy']:5.1f}%",
            )
            return MetricRecord({"accuracy": metrics["accuracy"], "loss": metrics["loss"]})

        server = ServerApp()

        @server.main()
        def federation(grid: Grid, context: Context) -> None:
            # fraction_train 1: every client in every round, as in the paper; fraction_evaluate
            # 0: no client-side evaluation, the global model is scored server side instead.
            n = setup.clients
            strategy: FedAvg
            if strategy_name == "fedprox":
                strategy = FedProx(
                    fraction_train=1.0,
                    fraction_evaluate=0.0,
                    min_train_nodes=n,
                    min_available_nodes=n,
                    proximal_mu=setup.mu,
                )
            else:
                strategy = FedAvg(
                    fraction_train=1.0,
                    fraction_evaluate=0.0,
                    min_train_nodes=n,
                    min_available_nodes=n,
                )
            aggregate = strategy.aggregate_train

            def aggregate_all(server_round: int, replies: Iterable[Message]) -> Any:
                # Flower averages whichever clients answered; a round some client missed
                # (an error, the timeout) is not the paper's setup, so it fails the run.
                replies = list(replies)
                answered = sum(not r.has_error() for r in replies)
                if answered < setup.clients:
                    missed.append(f"round {server_round}: {answered} of {setup.clients} clients")
                return aggregate(server_round, replies)

            strategy.aggregate_train = aggregate_all  # type: ignore[method-assign]
            torch.manual_seed(args.seed)  # the same initial model for every configuration
            strategy.start(
                grid=grid,
                initial_arrays=ArrayRecord(SimpleCNN().state_dict()),
                num_rounds=setup.rounds,
                timeout=args.timeout,
                train_config=ConfigRecord(
                    {
                        "local-epochs": setup.local_epochs,
                        "batch-size": setup.batch_size,
                        "lr": setup.learning_rate,
                        "momentum": setup.momentum,
                        "weight-decay": setup.weight_decay,
                        "seed": args.seed,
                    }
                ),
                evaluate_fn=global_evaluation,
            )

        run_simulation(
            server_app=server,
            client_app=client,
            num_supernodes=setup.clients,
            backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
            verbose_logging=args.verbose,
        )
    finally:
        ray.shutdown()  # Flower's backend shuts Ray down too; this covers a failed start
    wall = time.perf_counter() - started
    error = None
    if missed:
        error = "clients missed rounds (an error or --timeout): " + "; ".join(missed[:3])
    elif len(accuracy) != setup.rounds + 1:
        error = f"{max(len(accuracy) - 1, 0)} of {setup.rounds} rounds finished (see the log above)"
    return Outcome(partition, strategy_name, accuracy, wall, error)


def setup_matches(setup: Setup, strategy: str) -> bool:
    """Whether the run used the paper's settings (FedAvg has no mu to match)."""
    if strategy == "fedavg":
        return Setup(**{**asdict(setup), "mu": PAPER_SETUP.mu}) == PAPER_SETUP
    return setup == PAPER_SETUP


def report(outcomes: list[Outcome], setup: Setup) -> Table:
    table = Table(title=f"NIID-Bench Table 3, FMNIST (test accuracy %, {setup.rounds} rounds)")
    columns = ("partition", "strategy", "final acc", "best acc", "paper", "Δ", "setup matches")
    for column in columns:
        table.add_column(column, justify="left" if column in ("partition", "strategy") else "right")
    for o in outcomes:
        paper = PAPER[(o.partition, o.strategy)]
        if not o.finished:
            row = ["failed", "-", f"{paper:.1f}", "-"]
        else:
            final, best = 100 * o.accuracy[-1], 100 * max(o.accuracy[1:])
            row = [f"{final:.1f}", f"{best:.1f}", f"{paper:.1f}", f"{final - paper:+.1f}"]
        matches = "yes" if setup_matches(setup, o.strategy) else "no"
        table.add_row(PARTITIONS[o.partition], STRATEGIES[o.strategy], *row, matches)
    return table


def plot(outcomes: list[Outcome], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for o in outcomes:
        name = f"{PARTITIONS[o.partition]} {STRATEGIES[o.strategy]}"
        ax.plot(range(len(o.accuracy)), [100 * a for a in o.accuracy], marker=".", label=name)
    ax.set_xlabel("round")
    ax.set_ylabel("global test accuracy (%)")
    ax.set_ylim(0, 100)  # the whole scale: a cut axis makes small gaps look large
    ax.set_title("Fashion-MNIST, NIID-Bench setup under Flower's simulation engine")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def subset(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> tuple[Any, Any]:
    if n >= len(y):
        return x, y
    keep = np.sort(rng.choice(len(y), size=n, replace=False))
    return x[keep], y[keep]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, help="Federated rounds [50; quick: 2].")
    parser.add_argument("--local-epochs", type=int, help="Local epochs per round [10; quick: 1].")
    parser.add_argument("--clients", type=int, default=10, help="Clients [10].")
    parser.add_argument("--partitions", help=f"Comma-separated, of {','.join(PARTITIONS)}.")
    parser.add_argument("--strategies", help=f"Comma-separated, of {','.join(STRATEGIES)}.")
    parser.add_argument("--mu", type=float, default=PAPER_SETUP.mu, help="FedProx mu [0.01].")
    parser.add_argument("--seed", type=int, default=0, help="Partition and model seed [0].")
    parser.add_argument("--out", type=Path, help="Write niid_bench.json and niid_bench.png here.")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Smoke run: 2000 train / 1000 test images, 2 rounds, 1 epoch, 2 configurations.",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="CPUs for Ray: clients trained at once [1]."
    )
    parser.add_argument("--timeout", type=float, default=3600, help="Seconds to wait per round.")
    parser.add_argument("--data", type=Path, help="Folder of the Fashion-MNIST IDX files.")
    parser.add_argument("--verbose", action="store_true", help="Show Flower's and Ray's logs.")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.clients < 1:
        parser.error("--threads and --clients must be at least 1")
    for option, known in (("partitions", PARTITIONS), ("strategies", STRATEGIES)):
        value = getattr(args, option)
        if value is not None:
            chosen = [v.strip() for v in value.split(",") if v.strip()]
            unknown = sorted(set(chosen) - set(known))
            if unknown or not chosen:
                parser.error(f"--{option}: unknown {unknown or 'none given'}; use {list(known)}")
            setattr(args, option, chosen)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.verbose:
        # Read by Flower when first imported (in run_config), here and in Ray's workers: its
        # per-round log and run_simulation's deprecation notice would bury the progress bars.
        os.environ.setdefault("FLWR_LOG_LEVEL", "ERROR")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        x_train, y_train = fm.load("train", args.data)
        x_test, y_test = fm.load("test", args.data)
    except (fm.FashionMnistMissingError, fm.FashionMnistError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    quick = args.quick
    if quick:
        rng = np.random.default_rng(args.seed)
        x_train, y_train = subset(x_train, y_train, 2000, rng)
        x_test, y_test = subset(x_test, y_test, 1000, rng)
    setup = Setup(
        clients=args.clients,
        rounds=args.rounds or (2 if quick else PAPER_SETUP.rounds),
        local_epochs=args.local_epochs or (1 if quick else PAPER_SETUP.local_epochs),
        mu=args.mu,
        train_samples=len(y_train),
        test_samples=len(y_test),
    )
    if quick and args.partitions is None and args.strategies is None:
        configs = QUICK_CONFIGS
    else:
        configs = [
            (p, s)
            for s in (args.strategies or list(STRATEGIES))
            for p in (args.partitions or list(PARTITIONS))
        ]
    console.print(
        f"{len(configs)} configurations, {setup.clients} clients, {setup.rounds} rounds of "
        f"{setup.local_epochs} local epochs, {setup.train_samples} train / "
        f"{setup.test_samples} test images, {args.threads} CPU(s)"
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    outcomes = []
    started = time.perf_counter()
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        for partition, strategy in configs:
            data = (x_train, y_train, x_test, y_test)
            outcomes.append(run_config(partition, strategy, setup, data, args, progress))
    console.print(report(outcomes, setup))
    console.print(f"wall time {time.perf_counter() - started:.1f} s")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        document = {
            "benchmark": "NIID-Bench Table 3, FMNIST",
            "setup": asdict(setup),
            "paper_setup": asdict(PAPER_SETUP),
            "seed": args.seed,
            "threads": args.threads,
            "results": [
                {
                    "partition": o.partition,
                    "strategy": o.strategy,
                    "accuracy_per_round": o.accuracy,
                    "final_accuracy": o.accuracy[-1] if o.finished else None,
                    "best_accuracy": max(o.accuracy[1:]) if o.finished else None,
                    "paper_accuracy": round(PAPER[(o.partition, o.strategy)] / 100, 4),
                    "setup_matches": setup_matches(setup, o.strategy),
                    "wall_s": round(o.wall_s, 2),
                    "error": o.error,
                }
                for o in outcomes
            ],
        }
        (args.out / "niid_bench.json").write_text(json.dumps(document, indent=2))
        plot(outcomes, args.out / "niid_bench.png")
        console.print(f"wrote {args.out / 'niid_bench.json'} and niid_bench.png")
    failed = [o for o in outcomes if not o.finished]
    for o in failed:
        console.print(f"[red]{PARTITIONS[o.partition]} {STRATEGIES[o.strategy]}:[/red] {o.error}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
