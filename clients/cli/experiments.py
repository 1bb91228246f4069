"""``fedpark experiment`` and ``fedpark model``: train on approved contracts, fetch models."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fedpark.clients.cli.common import HubOpt, JsonOpt, TokenOpt, body, client, out, show
from fedpark.clients.cli.rounds import factory_table, publish_warning, round_line
from fedpark.contracts.ref import ContractRef
from fedpark.experiments.protocol.client import HubClient
from fedpark.experiments.protocol.resources.experiments import (
    ExperimentCreate,
    ExperimentPublic,
    ExperimentStatus,
    RoundPublic,
)

if TYPE_CHECKING:
    from fedpark.experiments.protocol.reports import RoundReport

experiment_app = typer.Typer(
    help="Federated experiments on approved contracts.", no_args_is_help=True
)

COLUMNS = (
    "id",
    "name",
    "status",
    "contract_id",
    "contract_version",
    "rounds_completed",
    "rounds",
    "org_id",
)
IdArg = Annotated[str, typer.Argument(help="Experiment id (exp-...).")]
FINAL = (ExperimentStatus.FINISHED, ExperimentStatus.FAILED, ExperimentStatus.STOPPED)


def _params(values: list[str]) -> dict[str, float]:
    params = {}
    for item in values:
        name, sep, value = item.partition("=")
        try:
            params[name.strip()] = float(value)
        except ValueError:
            raise typer.BadParameter(f"--param takes NAME=NUMBER, not {item!r}") from None
        if not sep:
            raise typer.BadParameter(f"--param takes NAME=NUMBER, not {item!r}")
    return params


@experiment_app.command("launch")
def launch(
    contract: Annotated[str, typer.Option(help="Approved contract as ID@VERSION.")],
    participants: Annotated[str, typer.Option(help="Factory organizations, comma-separated.")],
    name: Annotated[str, typer.Option(help="A name for people.")] = "experiment",
    model: Annotated[str, typer.Option(help="mlp or tcnn.")] = "mlp",
    task: Annotated[str, typer.Option(help="classification or regression.")] = "classification",
    hidden: Annotated[
        str, typer.Option(help="Layer widths (or CNN channels), e.g. 64,64.")
    ] = "64,64",
    window: Annotated[int, typer.Option(help="Rows per window (tcnn).")] = 32,
    series: Annotated[
        str | None,
        typer.Option(help="An id column (engine, run): no window spans two of its series."),
    ] = None,
    normalization: Annotated[
        str,
        typer.Option(
            help="pooled: readings standardized with statistics pooled over all factories; "
            "factory: each factory with its own (plants at different operating points; the "
            "model then runs with `model predict --reference`)."
        ),
    ] = "pooled",
    strategy: Annotated[
        str,
        typer.Option(
            help="fedavg, fedprox, fedavgm, fedadam, fedmedian, fedtrimmedavg, krum, or "
            "scaffold: FedAvg with control variates against client drift, for factories that "
            "each hold different faults (no DP with it)."
        ),
    ] = "fedavg",
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="Strategy parameter NAME=VALUE "
            "(repeatable; fedprox needs proximal_mu, e.g. 0.1; noise_multiplier and "
            "clipping_norm turn on DP, not with scaffold)."
        ),
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Federated rounds.")] = 3,
    min_factories: Annotated[
        int, typer.Option(min=1, help="k: the fewest factories whose updates form a round.")
    ] = 2,
    rounds_below_k: Annotated[
        int,
        typer.Option(
            min=1,
            help="Rounds with fewer than k contributing factories (they aggregate nothing) "
            "that end the experiment.",
        ),
    ] = 1,
    round_timeout: Annotated[float, typer.Option(help="Seconds per round.")] = 600,
    local_baseline: Annotated[
        bool,
        typer.Option(
            help="After the last round each factory also trains on its rows alone (same "
            "budget) and reports both metrics: what joining gained it."
        ),
    ] = True,
    publish: Annotated[
        str,
        typer.Option(
            help="The model to publish: last (the last round's weights) or best (the round "
            "best by held-out macro_f1, rmse for regression)."
        ),
    ] = "last",
    epochs: Annotated[int, typer.Option(min=1, help="Local epochs per round.")] = 1,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per local step.")] = 64,
    learning_rate: Annotated[float, typer.Option(help="Local optimizer step size.")] = 1e-3,
    watch_it: Annotated[bool, typer.Option("--watch", help="Follow it until it ends.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the experiment's id (scripts).")
    ] = False,
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start federated training on an approved contract (researchers)."""
    try:
        ref = ContractRef.parse(contract)
    except ValueError as exc:
        raise typer.BadParameter(f"--contract: {exc}") from None
    try:
        widths = [int(h) for h in hidden.split(",")]
    except ValueError:
        raise typer.BadParameter("--hidden takes whole numbers separated by commas") from None
    plan = body(
        ExperimentCreate,
        name=name,
        contract_id=ref.id,
        contract_version=ref.version,
        participants=[p.strip() for p in participants.split(",") if p.strip()],
        model={
            "kind": model,
            "task": task,
            "hidden": widths,
            "window": window,
            "series": series,
            "normalization": normalization,
        },
        train={"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate},
        strategy=strategy,
        strategy_params=_params(param or []),
        rounds=rounds,
        min_factories=min_factories,
        rounds_below_k=rounds_below_k,
        round_timeout=round_timeout,
        local_baseline=local_baseline,
        publish=publish,
    )
    with client(hub, token) as api:
        created = api.launch(plan)
        if quiet:
            typer.echo(created.id)
        else:
            show(created, COLUMNS, as_json)
        if watch_it:
            follow(api, created.id)


def reported(rounds: list[RoundPublic]) -> list[RoundReport]:
    """The reports of the rounds that have reported."""
    return [r.report for r in rounds if r.report]


def metrics_table(reports: list[RoundReport]) -> Table:
    table = Table(title="Metrics per round: the factories' held-out rows (weighted by their count)")
    keys = sorted({k for r in reports for k in r.evaluate})
    for col in ("round", "train_loss", *keys, "factories", "refused or failed"):
        table.add_column(col)
    for report in reports:
        trained = report.train_factories
        factories = f"{len(trained)} ({sum(f.examples for f in trained)} rows trained on)"
        if not report.aggregated:
            factories += " not aggregated: below k"
        absent = [f.org for f in report.refused]
        absent += [f.org or f"node {f.node_id}" for f in report.failures]
        loss = report.train.get("train_loss")
        table.add_row(
            str(report.round),
            "-" if loss is None else f"{loss:.4f}",
            *(f"{report.evaluate.get(k, float('nan')):.4f}" for k in keys),
            factories,
            ", ".join(absent) or "-",
        )
    return table


def follow(api: HubClient, experiment_id: str, poll: float = 2.0) -> ExperimentPublic:
    """A live progress bar over rounds with the latest metrics, until the run ends; not on a
    terminal (a log, a pipe), one plain line per round instead."""
    state = api.experiment(experiment_id)
    follow_rounds = _live if out.is_terminal else _lines
    state, rounds = follow_rounds(api, state, poll)
    if state.status is not ExperimentStatus.FINISHED:
        out.print(f"[red]{state.status}[/red]: {escape(state.error or '')}", highlight=False)
        raise typer.Exit(1)
    out.print(f"[green]finished[/green]: {len(rounds)} rounds", highlight=False)
    return state


Rounds = tuple[ExperimentPublic, list["RoundReport"]]


def _lines(api: HubClient, state: ExperimentPublic, poll: float) -> Rounds:
    printed = 0
    while True:
        rounds = reported(api.rounds(state.id))
        for report in rounds[printed:]:
            print(round_line(report, state.rounds), flush=True)
        printed = len(rounds)
        if state.status in FINAL:
            return state, rounds
        time.sleep(poll)
        state = api.experiment(state.id)


def _live(api: HubClient, state: ExperimentPublic, poll: float) -> Rounds:
    experiment_id = state.id
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )
    bar = progress.add_task(f"{experiment_id} {state.status}", total=state.rounds)
    with Live(progress, console=out, refresh_per_second=4) as live:
        while True:
            rounds = reported(api.rounds(experiment_id))
            progress.update(
                bar, completed=len(rounds), description=f"{experiment_id} {state.status}"
            )
            if rounds:
                live.update(_grid(progress, rounds))
            if state.status in FINAL:
                break
            time.sleep(poll)
            state = api.experiment(experiment_id)
    return state, rounds


def _grid(progress: Progress, rounds: list[RoundReport]) -> Table:
    grid = Table.grid()
    grid.add_row(progress)
    grid.add_row(metrics_table(rounds[-5:]))
    return grid


@experiment_app.command("watch")
def watch(experiment_id: IdArg, hub: HubOpt = None, token: TokenOpt = None) -> None:
    """Follow an experiment round by round; exits 1 if it fails or is stopped."""
    with client(hub, token) as api:
        follow(api, experiment_id)


@experiment_app.command("status")
def status(
    experiment_id: IdArg, hub: HubOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """An experiment's state and its metrics per round."""
    with client(hub, token) as api:
        state = api.experiment(experiment_id)
        rounds = [r for r in api.rounds(experiment_id) if r.report]
    if as_json:
        answer = {
            "experiment": state.model_dump(mode="json"),
            "rounds": [r.model_dump(mode="json") for r in rounds],
        }
        typer.echo(json.dumps(answer, indent=2))
        return
    show(state, COLUMNS, False)
    if state.error:
        out.print(f"error: {state.error}", highlight=False, markup=False)
    reports = reported(rounds)
    if reports:
        out.print(metrics_table(reports))
        out.print(factory_table(reports))
        print_gains(reports)
        warning = publish_warning(reports, state.settings)
        if warning:
            out.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)


def print_gains(rounds: list[RoundReport]) -> None:
    """The last evaluation's table of alone vs federated per factory, if it has one."""
    from fedpark.clients.cli.models import gain_table
    from fedpark.experiments.protocol.card import gain_rows
    from fedpark.experiments.protocol.manifest import factory_gains

    gains = factory_gains(rounds)
    if gains:
        task = "classification" if "accuracy" in gains[0].federated else "regression"
        out.print(gain_table(gain_rows(gains, task)))


@experiment_app.command("stop")
def stop(
    experiment_id: IdArg, hub: HubOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Stop a running experiment (its researchers)."""
    with client(hub, token) as api:
        show(api.stop(experiment_id), COLUMNS, as_json)


@experiment_app.command("list")
def list_experiments(hub: HubOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Experiments you may see."""
    with client(hub, token) as api:
        show(api.experiments(), COLUMNS, as_json)


def register(root: typer.Typer) -> None:
    root.add_typer(experiment_app, name="experiment")
