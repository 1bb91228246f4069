"""Shared by the learning benchmarks: FedPark's apps under Flower's simulation engine, and
the local-only and centralized baselines trained with the very same model and training code.

The federated arm runs FedPark's own ServerApp logic (``fedpark.experiments.server_app.run``:
Flower's strategy, round recording, a checkpoint per round) and FedPark's own ClientApp
functions (contract signature check, validation of the local file, training). Only the
transport differs from a deployment: Flower's simulation engine instead of SuperLink and
SuperNodes over gRPC, whose per-round overhead is measured on its own in
``benchmarks/federated_round.py`` and does not change what is learned.

Every arm is scored the same way: the model after each round (federated) or each epoch-block
(baselines) on the held-out test file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from fedpark.contracts import Contract, contract_sha256, validate_file
from fedpark.contracts.reader import open_source
from fedpark.contracts.report import DataProfile
from fedpark.experiments.features import (
    FeaturePlan,
    model_arrays,
    normalization_for,
    plan_from_contract,
    recent_split,
)
from fedpark.experiments.models import ModelSpec, build_model
from fedpark.experiments.protocol import (
    SPEC_KEY,
    DirectoryOutput,
    ModelSettings,
    Normalization,
    RunSpec,
    TrainSettings,
    pooled_normalization,
)
from fedpark.experiments.training import TrainConfig, evaluate, train
from fedpark.experiments.weights import from_safetensors

Metrics = dict[str, float]
# Before Flower is first imported (in run_fedpark): its logger reads this once.
os.environ.setdefault("FLWR_LOG_LEVEL", "ERROR")


# A poisoning attack: (the server's message, the honest reply) -> the reply sent instead.
Attack = Callable[[Any, Any], Any]


@dataclass
class Study:
    """A contract, its factories' files, a held-out test file, and how to model them."""

    contract: Contract
    factories: dict[str, Path]
    test_file: Path
    model: ModelSettings
    train: TrainSettings
    plan: FeaturePlan
    norm: Normalization
    profiles: dict[str, DataProfile]
    per_class: bool = False  # score per-class rates too (fault diagnosis: class_rates)
    # Each factory's share of the test set (the rows it would meet: its operating point),
    # scored with its own statistics under `normalization: factory`; None: the whole file.
    test_split: dict[str, Path] | None = None

    @classmethod
    def open(
        cls,
        contract_file: Path,
        factories: dict[str, Path],
        test_file: Path,
        model: ModelSettings,
        train: TrainSettings,
    ) -> Study:
        """Validate every factory file and pool normalization from their profiles (as the
        hub does from declared datasets: no rows are pooled)."""
        contract = Contract.model_validate(json.loads(contract_file.read_text()))
        plan = plan_from_contract(contract, model.task, model.series)
        profiles = {}
        for name, path in factories.items():
            result = validate_file(contract, path)
            if not result.report.passed:
                raise SystemExit(f"{name}: {path} breaks the contract: {result.report}")
            profiles[name] = result.profile
        pooled = [*plan.numeric, plan.label] if model.task == "regression" else plan.numeric
        norm = pooled_normalization(list(profiles.values()), pooled)
        return cls(contract, factories, test_file, model, train, plan, norm, profiles)

    def norm_of(self, factory: str) -> Normalization:
        """The statistics ``factory`` standardizes with, as FedPark's ClientApp picks them."""
        return normalization_for(
            self.model.normalization, self.norm, self.profiles[factory], self.plan
        )

    @property
    def classes(self) -> int | None:
        return len(self.plan.classes) if self.plan.classes else None

    def arrays(
        self, path: Path, norm: Normalization | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Model inputs, targets and series of one file, encoded exactly as a factory
        encodes them (with ``norm``; default: the pooled statistics)."""
        types = {c.name: c.arrow_type for c in self.contract.columns}
        source = open_source(path, csv_types=types)
        table = pa.Table.from_batches(list(source.batches(self.plan.columns, 1 << 16)))
        window = self.model.window if self.model.kind == "tcnn" else None
        return model_arrays(table, self.plan, norm or self.norm, window)

    def train_arrays(self, factory: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows a factory trains on: FedPark's ClientApp keeps the most recent
        ``eval_fraction`` (of every series) for local evaluation, so the baselines leave them
        out too."""
        x, y, series = self.arrays(self.factories[factory], self.norm_of(factory))
        train, _ = recent_split(x, y, self.train.eval_fraction, series)
        return train

    def test_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The held-out test set as the factories meet it: each its share (``test_split``)
        with its own statistics, or the whole file with the pooled ones."""
        if self.test_split is None:
            if self.model.normalization == "factory":
                raise ValueError("a factory-normalized model is scored on a test_split")
            return self.arrays(self.test_file)[:2]
        parts = [self.arrays(path, self.norm_of(f))[:2] for f, path in self.test_split.items()]
        return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])

    def new_model(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        target = None
        if self.model.task == "regression":
            target = (self.norm.mean[self.plan.label], self.norm.std[self.plan.label])
        return build_model(ModelSpec.of(self.model), self.plan.n_features, self.classes, target)

    def score(self, model: nn.Module, x: np.ndarray, y: np.ndarray) -> Metrics:
        return evaluate(model, x, y, self.model.task, self.classes, per_class=self.per_class)


def train_alone(
    study: Study,
    x: np.ndarray,
    y: np.ndarray,
    test: tuple[np.ndarray, np.ndarray],
    *,
    blocks: int,
    seed: int,
) -> list[Metrics]:
    """One model on ``x, y`` only: ``blocks`` blocks of ``train.epochs`` epochs each (the
    same local work a factory does per round), scored on ``test`` after every block."""
    model = study.new_model(seed)
    config = TrainConfig(
        epochs=study.train.epochs,
        batch_size=study.train.batch_size,
        learning_rate=study.train.learning_rate,
    )
    history = []
    for block in range(blocks):
        train(model, x, y, study.model.task, _reseeded(config, seed + block))
        history.append(study.score(model, *test))
    return history


def _reseeded(config: TrainConfig, seed: int) -> TrainConfig:
    return TrainConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        proximal_mu=config.proximal_mu,
        seed=seed,
    )


def run_fedpark(
    study: Study,
    *,
    strategy: str,
    strategy_params: dict[str, float],
    rounds: int,
    seed: int,
    work: Path,
    threads: int = 1,
    on_round: Callable[[int], None] | None = None,
    attack: Attack | None = None,
    attackers: frozenset[str] = frozenset(),
) -> list[Path]:
    """Train with FedPark's apps on Flower's simulation engine; the per-round checkpoints.

    ``attack`` rewrites the training replies of the factories named in ``attackers`` (a
    poisoning experiment: ``benchmarks/learning/poisoning.py``).
    """
    from flwr.app import Context, Message
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.simulation import run_simulation

    from fedpark.experiments import client_app as fedpark_client
    from fedpark.experiments import server_app as fedpark_server
    from fedpark.experiments.reporting import DirectoryReporter

    out = work / "rounds"
    spec, nodes = federated_run(study, strategy, strategy_params, rounds, seed, work)
    spec_json = spec.model_dump_json()

    class Reporter(DirectoryReporter):
        def round(self, report: Any, checkpoint: bytes) -> None:
            super().round(report, checkpoint)
            if on_round:
                on_round(report.round)

    server = ServerApp()

    @server.main()
    def _server(grid: Grid, context: Context) -> None:
        fedpark_server.run(grid, spec, Reporter(out))

    client = ClientApp()

    def _as_factory(context: Context) -> Context:
        # A virtual node knows only its partition id: give it the factory's node config,
        # as `fedpark factory join` gives a real SuperNode.
        # (Flower forbids changing the run's own config: the app gets a copy.)
        torch.set_num_threads(1)
        return Context(
            run_id=context.run_id,
            node_id=context.node_id,
            node_config={**nodes[int(context.node_config["partition-id"])]},
            state=context.state,
            run_config={**context.run_config, SPEC_KEY: spec_json},
        )

    @client.train()
    def _train(msg: Message, context: Context) -> Message:
        factory = _as_factory(context)
        reply = fedpark_client.train_fn(msg, factory)
        if attack is not None and factory.node_config["org"] in attackers:
            reply = attack(msg, reply)
        return reply

    @client.evaluate()
    def _evaluate(msg: Message, context: Context) -> Message:
        return fedpark_client.evaluate_fn(msg, _as_factory(context))

    import ray

    with _Quiet():
        # Started here so the clients' logs stay off the table; Flower reuses and stops it.
        ray.init(
            num_cpus=threads,
            num_gpus=0,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        try:
            run_simulation(
                server_app=server,
                client_app=client,
                num_supernodes=len(nodes),
                backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
            )
        finally:
            if ray.is_initialized():
                ray.shutdown()
    return collected_checkpoints(out, rounds)


def federated_run(
    study: Study,
    strategy: str,
    strategy_params: dict[str, float],
    rounds: int,
    seed: int,
    work: Path,
) -> tuple[RunSpec, list[dict[str, str]]]:
    """The run spec the hub would build, reporting into ``work/rounds``, and each
    factory's node config (its file and the approved contract, as `factory join` writes)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    contract_dir = _approved_contract_dir(study.contract, Ed25519PrivateKey.generate(), work)
    spec = RunSpec(
        experiment_id="learning-benchmark",
        contract=study.contract.model_dump(mode="json"),
        contract_sha256=contract_sha256(study.contract),
        model=study.model,
        train=study.train,
        strategy=strategy,
        strategy_params=strategy_params,
        rounds=rounds,
        min_factories=len(study.factories),
        round_timeout=3600,
        normalization=study.norm,
        seed=seed,
        local_baseline=False,  # the harness trains its own local-only arms, on the test set
        output=DirectoryOutput(directory=str(work / "rounds")),
    )
    nodes = [
        {
            "org": name,
            "data-path": str(path),
            "contract-dir": str(contract_dir),
            "work-dir": str(work / "nodes" / name),
        }
        for name, path in study.factories.items()
    ]
    return spec, nodes


def collected_checkpoints(out: Path, rounds: int) -> list[Path]:
    """The run's per-round checkpoints, once it has ended (its failure, if it failed)."""
    failure = out / "failure.json"
    if failure.exists():
        raise RuntimeError(f"the federated run failed: {failure.read_text()}")
    checkpoints = sorted(out.glob("checkpoint-*.safetensors"))
    if len(checkpoints) != rounds:
        raise RuntimeError(f"expected {rounds} checkpoints, found {len(checkpoints)} in {out}")
    return checkpoints


def _approved_contract_dir(contract: Contract, key: Any, work: Path) -> Path:
    """What ``fedpark contract download`` writes for an approved contract."""
    from datetime import UTC, datetime

    from fedpark.contracts import canonical_json
    from fedpark.contracts.signing import approval_payload, public_key_pem, sign_document

    folder = work / "contract"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "contract.json").write_bytes(canonical_json(contract))
    payload = approval_payload(contract, "benchmark", "park-operator", datetime.now(UTC), "bench")
    (folder / "signature.json").write_text(json.dumps(sign_document(payload, key)))
    (folder / "hub-key.pem").write_bytes(public_key_pem(key.public_key()))
    return folder


def score_checkpoints(
    study: Study, checkpoints: Sequence[Path], test: tuple[np.ndarray, np.ndarray]
) -> list[Metrics]:
    """The global model after each round, on the held-out test set."""
    history = []
    for path in checkpoints:
        model = study.new_model(0)
        model.load_state_dict(from_safetensors(path.read_bytes()))
        history.append(study.score(model, *test))
    return history


class _Quiet:
    """Keep Flower's and Ray's per-round logging off the benchmark's table."""

    def __enter__(self) -> None:
        os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
        logging.getLogger("flwr").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore")

    def __exit__(self, *_: object) -> None:
        logging.getLogger("flwr").setLevel(logging.INFO)


def scratch(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def run_arms(
    study: Study,
    *,
    rounds: int,
    seed: int,
    strategies: dict[str, Arm],
    progress: Any,
    engine: str = "simulation",
    baselines: bool = True,
) -> dict[str, list[Metrics]]:
    """Every arm for one seed: each factory alone, centralized (unless not ``baselines``),
    and FedPark per strategy (on Flower's simulation engine, or ``engine="deployment"``:
    SuperLink and SuperNodes)."""
    test = study.test_arrays()
    curves: dict[str, list[Metrics]] = {}
    arms = (len(study.factories) + 1 if baselines else 0) + len(strategies)
    task = progress.add_task(f"seed {seed}", total=rounds * arms)
    for name in study.factories if baselines else ():
        x, y = study.train_arrays(name)
        curves[f"local {name}"] = train_alone(study, x, y, test, blocks=rounds, seed=seed)
        progress.advance(task, rounds)
    if baselines:
        pooled = [study.train_arrays(name) for name in study.factories]
        x = np.concatenate([p[0] for p in pooled])
        y = np.concatenate([p[1] for p in pooled])
        curves["centralized"] = train_alone(study, x, y, test, blocks=rounds, seed=seed)
        progress.advance(task, rounds)
    for label, (strategy, params) in strategies.items():
        federate = run_fedpark
        if engine == "deployment":
            from deployment import run_deployed as federate
        checkpoints = federate(
            study,
            strategy=strategy,
            strategy_params=params,
            rounds=rounds,
            seed=seed,
            work=scratch(f"fedpark-{strategy}-"),
            on_round=lambda _: progress.advance(task),
        )
        curves[f"FedPark {label}"] = score_checkpoints(study, checkpoints, test)
    progress.remove_task(task)
    return curves


LOCAL_MEAN = "local-only (mean of factories)"


def summarize(runs: list[dict[str, list[Metrics]]], metrics: Sequence[str]) -> dict[str, Metrics]:
    """Median over seeds of each arm's final metrics, plus the mean local-only factory."""
    import statistics

    table = {
        arm: {m: statistics.median(r[arm][-1][m] for r in runs) for m in metrics} for arm in runs[0]
    }
    local = [v for arm, v in table.items() if arm.startswith("local")]
    if local:
        table[LOCAL_MEAN] = {m: float(np.mean([v[m] for v in local])) for m in metrics}
    return table


def spread(runs: list[dict[str, list[Metrics]]], metric: str) -> dict[str, tuple[float, float]]:
    """Lowest and highest final ``metric`` over the seeds, per arm."""
    return {
        arm: (min(r[arm][-1][metric] for r in runs), max(r[arm][-1][metric] for r in runs))
        for arm in runs[0]
    }


def plot_curves(
    runs: list[dict[str, list[Metrics]]],
    metric: str,
    path: Path,
    *,
    title: str,
    ylabel: str,
    scale: float = 1.0,
) -> None:
    """The metric after each round, median over seeds: one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    first = runs[0]
    rounds = np.arange(1, len(next(iter(first.values()))) + 1)
    for arm in first:
        curve = np.median([[m[metric] * scale for m in r[arm]] for r in runs], axis=0)
        style: dict[str, Any] = {"linewidth": 2}
        if arm.startswith("local"):
            style = {"linewidth": 1, "alpha": 0.6, "linestyle": ":"}
        elif arm == "centralized":
            style = {"linewidth": 2, "color": "black", "linestyle": "--"}
        ax.plot(rounds, curve, label=arm, **style)
    ax.set_xlabel("round (local-only and centralized: the same local epochs per round)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(bottom=0)  # from 0: a cut axis makes small gaps look large
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_repeats(
    study: Study,
    *,
    rounds: int,
    repeats: int,
    strategies: dict[str, Arm],
    console: Any,
    engine: str = "simulation",
    baselines: bool = True,
) -> list[dict[str, list[Metrics]]]:
    """``run_arms`` for seeds 0 .. repeats-1, with a progress bar."""
    from rich.progress import Progress

    runs = []
    with Progress(console=console, transient=True) as progress:
        for seed in range(repeats):
            arms = run_arms(
                study,
                rounds=rounds,
                seed=seed,
                strategies=strategies,
                progress=progress,
                engine=engine,
                baselines=baselines,
            )
            runs.append(arms)
    return runs


def save_results(
    out: Path, name: str, args: Any, table: dict[str, Metrics], runs: list[dict[str, Any]]
) -> Path:
    """``out/name.json``: the settings, the summary table and every round of every arm."""
    out.mkdir(parents=True, exist_ok=True)
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "table": table, "runs": runs}
    path = out / f"{name}.json"
    path.write_text(json.dumps(result, indent=1))
    return path


class Arm(NamedTuple):
    """A FedPark arm: a strategy and its parameters."""

    strategy: str
    params: dict[str, float]


def parse_strategies(specs: Sequence[str]) -> dict[str, Arm]:
    """``["fedavg", "fedprox:proximal_mu=0.1"]`` → arms by label: the strategy's name, or
    the whole spec where one strategy is given twice (``fedprox:proximal_mu=0.1``)."""
    parsed: list[tuple[str, Arm]] = []
    for spec in specs:
        name, _, rest = spec.partition(":")
        params = {}
        for pair in filter(None, rest.split(",")):
            key, _, value = pair.partition("=")
            params[key.strip()] = float(value)
        name = name.strip()
        values = ",".join(f"{key}={params[key]!r}" for key in sorted(params))
        parsed.append((f"{name}:{values}" if values else name, Arm(name, params)))
    names = Counter(arm.strategy for _, arm in parsed)
    strategies: dict[str, Arm] = {}
    for label, arm in parsed:
        label = label if names[arm.strategy] > 1 else arm.strategy
        if label in strategies:
            raise SystemExit(f"--strategy {label} is given twice")
        strategies[label] = arm
    return strategies
