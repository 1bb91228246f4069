"""``fedpark demo``: a whole industrial park on this machine, every component started for real.

Embedded S3 storage and the hub, a Flower SuperLink, and one SuperNode per factory, each
factory a simulated Tennessee Eastman plant with its own operating mode and its own subset of
faults. A steward approves a contract, the factories validate and declare their data and join,
a researcher trains a fault classifier for a few rounds, and a
partner downloads the model and verifies its signed provenance. Everything it started is
stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fedpark.clients.cli.common import out
from fedpark.clients.processes import ChildProcess, free_port
from fedpark.contracts.ref import ContractRef
from fedpark.experiments.protocol.client import HubClient
from fedpark.experiments.protocol.errors import HubError, HubUnreachableError
from fedpark.experiments.protocol.plan import ModelSettings, StrategyName, TrainSettings
from fedpark.experiments.protocol.resources.experiments import ExperimentCreate
from fedpark.experiments.protocol.resources.identity import (
    OrganizationCreate,
    OrgKind,
    Role,
    TokenCreate,
    UserCreate,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from fedpark.experiments.protocol import RoundReport
    from fedpark.experiments.protocol.manifest import ModelManifest

MARKER = ".fedpark-demo"
RESEARCH_ORG, PARTNER_ORG = "tu-lab", "carmaker"
# The temporal CNN over 32-row windows (96 minutes) of each run: the best TEP model of
# docs/results.md that trains in the demo's budget (a per-row MLP cannot tell most faults
# apart: a fault is a change over time, not a value).
DEMO_MODEL = ModelSettings(
    kind="tcnn", task="classification", hidden=(32, 32, 32), window=32, series="run"
)
# Batch 64: a steadier last round than 32 (in-process, seeds 0-3: 0.76-0.83 macro-F1 against
# 0.71-0.85 for seeds 0-2; the demo's own seed is 0), and an epoch takes fewer steps.
DEMO_TRAINING = TrainSettings(epochs=2, batch_size=64, learning_rate=0.003)
# SCAFFOLD: every plant holds different faults, and its drift correction reaches a good
# model in fewer rounds than FedAvg (docs/results.md).
DEMO_STRATEGY = StrategyName.SCAFFOLD
DEMO_ONSET = 1.0  # hours into each simulated run when its fault starts (normal before)


def _prepare(data_dir: Path) -> None:
    """Start from an empty folder; only ever wipe one the demo itself made."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).exists():
            raise typer.BadParameter(f"{data_dir} is not empty and not a demo folder")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    (data_dir / MARKER).write_text("made by `fedpark demo`; deleted by the next run\n")


def _fedpark(*args: str) -> list[str]:
    return [sys.executable, "-m", "fedpark.clients.cli", *args]


def _wait_healthy(api: HubClient, hub: ChildProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not hub.alive():
            raise HubError(f"the hub exited during start:\n{hub.log_tail()}")
        try:
            if api.health().status == "up":
                return
        except HubUnreachableError:
            pass
        time.sleep(0.2)
    raise HubError(f"the hub did not become healthy in {timeout:.0f}s:\n{hub.log_tail()}")


class Park:
    """The demo's processes and people; stops every process it started."""

    def __init__(self, data_dir: Path, factories: int) -> None:
        from fedpark.datasets.tep import MODES, plants

        self.dir = data_dir
        # Each plant its own subset of the TEP's faults (each fault seen by two plants), all
        # in operating mode 1: the setting whose federated model is good within the demo's
        # few rounds (plants in different modes need more: docs/results.md, park setting).
        self.plants = plants(factories, modes=MODES[:1], overlap=min(2, factories - 1))
        self.processes: list[ChildProcess] = []  # the SuperLink and the hub
        self.factories: list[ChildProcess] = []  # their `fedpark factory join`
        self.tokens: dict[str, str] = {}
        self.files: dict[str, Path] = {}  # each plant's data file
        self.unseen: pa.Table | None = None  # runs of the faults each plant never saw
        self.url = ""
        self.link = 0  # the SuperLink's port

    def start(self, hub_port: int | None) -> None:
        from fedpark.clients.supernode import flower_env, local_superlink_argv

        link = self.link = free_port()
        (self.dir / "superlink").mkdir(parents=True, exist_ok=True)
        self.processes.append(
            ChildProcess(
                local_superlink_argv(link),
                self.dir / "logs" / "superlink.log",
                env=flower_env(self.dir / "superlink", superlink=True),
            ).start()
        )
        port = hub_port or free_port()
        self.url = f"http://127.0.0.1:{port}"
        hub = ChildProcess(
            _fedpark("hub", "serve", "--port", str(port), "--data-dir", str(self.dir / "hub")),
            self.dir / "logs" / "hub.log",
            env={**flower_env(self.dir / "hub-flwr"), "FEDPARK_SUPERLINK": f"127.0.0.1:{link}"},
        ).start()
        self.processes.append(hub)
        with HubClient(self.url) as anonymous:
            _wait_healthy(anonymous, hub, timeout=120)
        self.tokens["admin"] = (self.dir / "hub" / "bootstrap-admin-token").read_text().strip()

    def wait_for_factories(self) -> None:
        """Until every factory's SuperNode is online (each warms its ClientApp worker first):
        a run launched earlier would train its first round without the late ones."""
        from fedpark.clients.supernode import wait_for_nodes

        online = wait_for_nodes(f"127.0.0.1:{self.link}", len(self.plants), timeout=180)
        if online < len(self.plants):
            out.print(
                f"{online} of {len(self.plants)} factories online: see {self.dir / 'logs'}",
                markup=False,
                soft_wrap=True,
            )

    def api(self, who: str) -> HubClient:
        return HubClient(self.url, self.tokens[who])

    def populate(self) -> None:
        orgs = [(p.name, p.name.replace("-", " ").title(), "factory") for p in self.plants]
        orgs += [
            (RESEARCH_ORG, "University Process Lab", "university"),
            (PARTNER_ORG, "Carmaker (model consumer)", "partner"),
        ]
        people = [
            ("steward", "park-operator", "steward"),
            ("researcher", RESEARCH_ORG, "researcher"),
            ("partner", PARTNER_ORG, "partner"),
        ]
        people += [(f"{p.name}-ops", p.name, "factory") for p in self.plants]
        with self.api("admin") as admin:
            for org_id, name, kind in orgs:
                admin.create_organization(
                    OrganizationCreate(id=org_id, name=name, kind=OrgKind(kind))
                )
            for username, org_id, role in people:
                user = admin.create_user(
                    UserCreate(username=username, org_id=org_id, role=Role(role))
                )
                created = admin.create_token(TokenCreate(name="demo", user_id=user.id))
                self.tokens[username] = created.token

    def launch_body(self, document: dict[str, Any], rounds: int, name: str) -> ExperimentCreate:
        """The experiment the demo runs (the round benchmark runs the same one)."""
        return ExperimentCreate(
            name=name,
            contract_id=document["id"],
            contract_version=document["version"],
            participants=[p.name for p in self.plants],
            # Each plant keeps the last 20 % of every run for its own evaluation: holding out
            # its last runs instead would score faults the plant never trained on.
            model=DEMO_MODEL,
            train=DEMO_TRAINING,
            strategy=DEMO_STRATEGY,
            rounds=rounds,
            min_factories=2,
            round_timeout=300,
        )

    def stop_factories(self) -> None:
        """The factories all at once (each leaves the SuperLink on its own, ~2 s)."""
        with ThreadPoolExecutor(max_workers=max(1, len(self.factories))) as pool:
            list(pool.map(ChildProcess.stop, self.factories))

    def stop(self) -> None:
        """The factories, then the hub, then the SuperLink."""
        self.stop_factories()
        for process in reversed(self.processes):
            process.stop()


def approve_contract(park: Park) -> dict[str, Any]:
    from fedpark.datasets.tep import contract_document

    owner = park.plants[0].name
    document = contract_document(
        owner,
        experiment_orgs=[RESEARCH_ORG],
        model_download_orgs=[PARTNER_ORG, *(p.name for p in park.plants)],
    )
    ref = ContractRef(document["id"], document["version"])
    with park.api(f"{owner}-ops") as author:
        author.create_contract(document)
        author.submit_contract(ref)
    with park.api("steward") as steward:
        approved = steward.approve_contract(ref)
    out.print(
        f"contract {document['id']} {document['version']} drafted by {owner}, approved and "
        f"signed by the steward (sha256 {approved.document_sha256[:12]}…)"
    )
    return document


def plant_data(park: Park, hours: float) -> dict[str, Path]:
    """Simulate each plant's Tennessee Eastman history (a progress bar: it takes a while)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from fedpark.clients.cli.demo_gains import unseen_runs
    from fedpark.datasets import tep

    # Also, in the same processes, a short run of every fault each plant has never seen:
    # the demo's last step scores the model on them.
    unseen = unseen_runs(park.plants, tep.OBSERVABLE_FAULTS)
    with Progress(
        TextColumn("simulating the plants' TEP runs"), BarColumn(), MofNCompleteColumn()
    ) as progress:
        total = tep.runs_needed(park.plants, test=False) + len(unseen)
        task = progress.add_task("runs", total=total)
        generated = tep.generate(
            park.dir / "plants",
            park.plants,
            hours=hours,
            onset=DEMO_ONSET,
            test=False,
            extra=unseen,
            progress=lambda n: progress.advance(task, n),
        )
    park.unseen = generated.extra
    return generated.plant_files


def join_factories(park: Park, document: dict[str, Any], hours: float) -> None:
    import pyarrow.parquet as pq

    from fedpark.contracts import Contract, validate_file

    contract = Contract.model_validate(document)
    ref = ContractRef(contract.id, contract.version)
    files = park.files = plant_data(park, hours)
    for plant in park.plants:
        folder = park.dir / plant.name
        folder.mkdir()
        data = files[plant.name]
        rows = pq.ParquetFile(data).metadata.num_rows
        result = validate_file(contract, data)
        with park.api(f"{plant.name}-ops") as factory:
            factory.declare_dataset(ref, result.declaration("tep-history"))
        park.factories.append(
            ChildProcess(
                _fedpark(
                    "factory", "join", "--data", str(data), "--work-dir", str(folder / "node")
                ),
                park.dir / "logs" / f"{plant.name}.log",
                env={
                    # The demo's factories share this machine's cores: one torch thread each
                    # (three ClientApps of two threads on two cores took 3x the CPU per epoch).
                    "OMP_NUM_THREADS": "1",
                    **os.environ,
                    "FEDPARK_HUB": park.url,
                    "FEDPARK_TOKEN": park.tokens[f"{plant.name}-ops"],
                },
            ).start()
        )
        out.print(
            f"{plant.name} ({plant.mode}): {rows} rows, faults seen {list(plant.faults)}, "
            f"validated ({result.report.rules_checked} rules) and declared; joined"
        )


def demo(
    data_dir: Annotated[
        Path, typer.Option(help="Folder for the demo's hub, data and results (wiped each run).")
    ] = Path("fedpark-demo"),
    factories: Annotated[int, typer.Option(min=2, max=12, help="Factories in the park.")] = 3,
    rounds: Annotated[int, typer.Option(min=1, max=50, help="Federated rounds.")] = 5,
    hours: Annotated[
        float, typer.Option(min=2.0, max=100.0, help="Length of each simulated plant run.")
    ] = 12.0,
    port: Annotated[int | None, typer.Option(help="Hub port (default: a free one).")] = None,
    keep_running: Annotated[
        bool, typer.Option(help="Keep everything up at the end until Ctrl-C.")
    ] = False,
) -> None:
    """Run a whole park on this machine: contract, factories, federated training, signed model."""
    from fedpark.clients.cli.experiments import follow, reported

    started = time.perf_counter()
    data_dir = data_dir.resolve()
    _prepare(data_dir)
    park = Park(data_dir, factories)
    out.print(
        f"Starting embedded S3, the hub and a Flower SuperLink in {data_dir} ...",
        markup=False,
        soft_wrap=True,
    )
    try:
        park.start(port)
        park.populate()
        document = approve_contract(park)
        join_factories(park, document, hours)
        park.wait_for_factories()
        launch = park.launch_body(document, rounds, "TEP fault diagnosis")
        with park.api("researcher") as researcher:
            experiment = researcher.launch(launch).id
            out.print(
                f"researcher launched {experiment}: {DEMO_STRATEGY.value}, temporal CNN, "
                f"{rounds} rounds, {factories} factories"
            )
            follow(researcher, experiment)
            rounds_done = reported(researcher.rounds(experiment))
        if not keep_running:  # their SuperNodes still poll the SuperLink: free the cores
            park.stop_factories()
        _results(park, experiment, rounds_done, time.perf_counter() - started)
        if keep_running:
            out.print(f"\nEverything keeps running (hub {park.url}) until you press Ctrl-C.")
            while all(p.alive() for p in park.processes + park.factories):
                time.sleep(0.5)
    except KeyboardInterrupt:
        out.print("\nStopping ...")
    finally:
        park.stop()
        out.print(
            f"Everything the demo started is stopped. Results and logs: {data_dir}",
            markup=False,
            soft_wrap=True,
        )


def _held_out(park: Park, folder: Path) -> None:
    """What federating gained each plant (its held-out rows, and short runs of the faults
    it never saw), then the partner's ``model predict`` on the first plant's unseen runs."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from fedpark.clients.cli import demo_gains
    from fedpark.experiments.protocol.node import ALONE_MODEL
    from fedpark.experiments.serving.folder import open_model
    from fedpark.experiments.serving.predict import predict_file

    model = open_model(folder)
    runs = park.unseen
    if runs is None:
        return
    alone = {}
    for plant in park.plants:  # what each plant's ClientApp kept of its gain-table baseline
        kept = list((park.dir / plant.name / "node").glob(ALONE_MODEL.format(run="*")))
        if kept:  # the demo's one run: its newest
            alone[plant.name] = max(kept, key=lambda path: path.stat().st_mtime)
        else:
            out.print(f"{plant.name} kept no alone model (see its log): left out below")
    unseen = demo_gains.compare_on_unseen(model, park.plants, alone, runs)
    held_out = {
        g.org: (g.alone.get("macro_f1", float("nan")), g.federated.get("macro_f1", float("nan")))
        for g in model.manifest.gains
    }
    out.print(demo_gains.gains_table(held_out, unseen, {p.name: p.mode for p in park.plants}))
    out.print(demo_gains.GAINS_NOTE, highlight=False)
    plant = park.plants[0]
    data = park.dir / "unseen-faults.parquet"
    pq.write_table(runs.filter(pc.equal(runs["plant"], f"unseen-{plant.name}")), data)
    summary = predict_file(model, data, park.dir / "predictions.parquet")
    metrics = summary.metrics() or {}
    runs_alarmed = len({alarm.series for alarm in summary.alarms})
    count = len(next((u.faults for u in unseen if u.plant == plant.name), ()))
    claimed, number = _manifest_accuracy(model.manifest)
    out.print(
        f"{plant.name} ran the downloaded model on its line (`fedpark model predict`, no hub) "
        f"over its runs of the {count} faults it never saw: {summary.rows} rows, "
        f"{summary.predicted} predicted (a run's first {(model.package.window or 1) - 1} rows "
        f"fill the model's window), {metrics.get('accuracy', float('nan')):.0%} of them named "
        f"right, against {claimed:.0%} in the signed manifest (round {number}, the plants' "
        f"held-out rows of the faults they trained on); an alarm in {runs_alarmed} of the "
        f"{count} runs",
        highlight=False,
    )


def _manifest_accuracy(manifest: ModelManifest) -> tuple[float, int]:
    """The accuracy the manifest claims for the published weights (their round's federated
    evaluation), and that round's number."""
    aggregated = [r for r in manifest.rounds if r.aggregated]
    number = manifest.published.round if manifest.published else aggregated[-1].round
    evaluated = next(r for r in aggregated if r.round == number)
    return evaluated.evaluate.get("accuracy", float("nan")), number


def _results(park: Park, experiment: str, rounds: list[RoundReport], took: float) -> None:
    from fedpark.clients.cli.models import verify_files
    from fedpark.clients.plots import plot_rounds

    folder = park.dir / "model"
    folder.mkdir()
    with park.api("partner") as partner:
        for name, part in (
            ("model.safetensors", "weights"),
            ("manifest.json", "manifest"),
            ("manifest.sig.json", "signature"),
        ):
            (folder / name).write_bytes(partner.model_part(experiment, part))
        (folder / "hub-key.pem").write_bytes(partner.hub_key())
    payload = verify_files(
        folder / "model.safetensors",
        folder / "manifest.json",
        folder / "manifest.sig.json",
        folder / "hub-key.pem",
    )
    out.print(
        f"partner {PARTNER_ORG} downloaded the model and verified the hub's signature "
        f"(weights sha256 {payload['weights_sha256'][:12]}…)"
    )
    _held_out(park, folder)
    plot = plot_rounds(rounds, park.dir / "metrics.png", f"{experiment}: TEP fault diagnosis")
    first = park.plants[0].name
    where = {
        "model, manifest, signature": str(folder),
        "metrics plot": str(plot),
        f"runs of faults {first} never saw": str(park.dir / "unseen-faults.parquet"),
        "its predictions": str(park.dir / "predictions.parquet"),
        "logs": str(park.dir / "logs"),
    }
    out.print(f"\nFedPark demo finished in {took:.0f}s", style="bold")
    for what, path in where.items():  # a line each, never wrapped: paths stay whole, to copy
        out.print(f"  {what}: {path}", soft_wrap=True, markup=False, highlight=False)
    # On a line of its own, never wrapped: to copy.
    command = shlex.join(
        [
            _program(),
            "model",
            "verify",
            str(folder / "model.safetensors"),
            str(folder / "manifest.json"),
            "--signature",
            str(folder / "manifest.sig.json"),
            "--key",
            str(folder / "hub-key.pem"),
        ]
    )
    out.print("Verify the model offline (one line, to copy):")
    out.print(command, soft_wrap=True, markup=False, highlight=False)


def _program() -> str:
    """How to call ``fedpark`` from this shell: its name when PATH finds this one, else its
    path (README line 1 installs into .venv without activating it)."""
    mine = Path(sys.executable).parent / "fedpark"
    found = shutil.which("fedpark")
    if found and Path(found).resolve() == mine.resolve():
        return "fedpark"
    try:
        return str(mine.relative_to(Path.cwd()))
    except ValueError:
        return str(mine)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
