"""``fedpark model``: download a signed model, and run it at the factory (predict, export to
ONNX, fine-tune on local rows, read its card). Everything but ``download`` works offline.

Exit codes: 0 done; 1 refused (a model that does not verify, data that breaks the contract);
2 unusable input (a missing or unreadable file, a wrong option).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from fedpark.clients.cli.common import HubOpt, TokenOpt, cannot_read, client, fail, literal, out

if TYPE_CHECKING:
    from fedpark.experiments.serving.folder import ModelFolder
    from fedpark.experiments.serving.predict import PredictionError
    from fedpark.experiments.serving.summary import Summary

model_app = typer.Typer(
    help="Trained models: download and verify them, predict, export to ONNX, fine-tune.",
    no_args_is_help=True,
)
ModelDir = Annotated[Path, typer.Argument(help="A model folder (from `fedpark model download`).")]
ReferenceOpt = Annotated[
    Path | None,
    typer.Option(
        help="For a model trained with normalization 'factory': a file of this plant's "
        "history (the file it trained on) whose statistics standardize the readings."
    ),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option("--key", help="The hub's public key to trust (default: the folder's pinned one)."),
]
DataArg = Annotated[Path, typer.Argument(help="A Parquet, Arrow IPC/Feather or CSV file.")]


_fail = fail


def open_folder(folder: Path, key: Path | None = None) -> ModelFolder:
    """The verified model, said so with the key that signed it; exit 1 if it does not
    verify, 2 if it is not a model folder at all."""
    from fedpark.experiments.serving.folder import (
        ModelFolderError,
        UnusableFolderError,
        open_model,
    )

    try:
        model = open_model(folder, key)
    except UnusableFolderError as exc:
        raise _fail(str(exc), 2) from None
    except ModelFolderError as exc:
        raise _fail(str(exc), 1) from None
    pinned = key or folder / "hub-key.pem"
    out.print(
        f"verified {model.name}: signed by hub key {model.key_id} (pinned in {pinned})",
        highlight=False,
        markup=False,
        style="dim",
    )
    return model


def _data_file(data: Path) -> None:
    if not data.exists():
        raise _fail(f"{data} does not exist", 2)
    if not data.is_file():
        raise _fail(f"{data} is not a file", 2)


@model_app.command("download")
def download(
    experiment_id: Annotated[str, typer.Argument(help="Experiment id (exp-...).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder to write into.")] = Path(),
    hub: HubOpt = None,
    token: TokenOpt = None,
) -> None:
    """Download a model, its manifest and signature, and verify them (exit 1 if they fail)."""
    output.mkdir(parents=True, exist_ok=True)
    files = {
        "model.safetensors": "weights",
        "manifest.json": "manifest",
        "manifest.sig.json": "signature",
    }
    with client(hub, token) as api:
        for name, part in files.items():
            (output / name).write_bytes(api.model_part(experiment_id, part))
        key = output / "hub-key.pem"
        if not key.exists():  # pin the hub's key the first time; keep it after that
            key.write_bytes(api.hub_key())
    payload = verify_files(
        output / "model.safetensors", output / "manifest.json", output / "manifest.sig.json", key
    )
    out.print(
        f"[green]verified[/green] {experiment_id}: weights sha256 "
        f"{payload['weights_sha256'][:16]}…, signed by hub key "
        f"{json.loads((output / 'manifest.sig.json').read_text())['key_id']}",
        highlight=False,
    )
    out.print(
        f"files in {output}; next: fedpark model show {output}",
        highlight=False,
        markup=False,
        soft_wrap=True,  # a command to copy: never wrapped
    )


def verify_files(weights: Path, manifest: Path, signature: Path, key: Path) -> dict[str, Any]:
    from fedpark.contracts import ContractError
    from fedpark.contracts.signing import load_public_key
    from fedpark.experiments.protocol import verify_model

    try:
        return verify_model(
            weights.read_bytes(),
            manifest.read_bytes(),
            json.loads(signature.read_text()),
            load_public_key(key.read_bytes()),
        )
    except (OSError, ValueError) as exc:
        raise fail(cannot_read(exc, signature)) from None
    except ContractError as exc:
        out.print(f"[red]NOT VERIFIED[/red]: {literal(str(exc))}", highlight=False)
        raise typer.Exit(1) from None


@model_app.command("verify")
def verify(
    model: Annotated[Path, typer.Argument(help="model.safetensors")],
    manifest: Annotated[Path, typer.Argument(help="manifest.json")],
    signature: Annotated[Path, typer.Option(help="manifest.sig.json")] = Path("manifest.sig.json"),
    key: Annotated[Path, typer.Option(help="The hub's public key (PEM), pinned.")] = Path(
        "hub-key.pem"
    ),
) -> None:
    """Check offline that the hub signed this manifest and that it names these weights."""
    payload = verify_files(model, manifest, signature, key)
    facts = json.loads(manifest.read_text())
    out.print(
        f"[green]verified[/green]: experiment {payload['experiment_id']} on contract "
        f"{facts['contract']['id']} {facts['contract']['version']}, "
        f"{len(facts['rounds'])} rounds, contributing factories "
        f"{', '.join(facts['participants'])}",
        highlight=False,
    )


@model_app.command("show")
def show_model(folder: ModelDir, key: KeyOpt = None) -> None:
    """The model card: intended use, data, metrics per round and per factory, what each
    factory gained against training alone, known limits, and how to run it."""
    from fedpark.experiments.protocol.card import model_card

    model = open_folder(folder, key)
    card = model_card(model.manifest, str(folder), model.package)
    suffix = " — fine-tuned locally" if model.local else ""
    out.print(f"[bold]{literal(card.title)}[/bold]{suffix}")
    for heading, lines in (("Intended use", card.intended_use), ("Data", card.data)):
        out.print(f"\n[bold]{heading}[/bold]")
        for line in lines:
            out.print(f"  {line}", highlight=False, markup=False)
    if card.rounds:
        table = Table(title="Rounds")
        names = sorted({k for *_, m in card.rounds for k in m if k != "loss"})
        for col in ("round", "factories", "rows", *names):
            table.add_column(col)
        for number, factories, rows, metrics in card.rounds:
            cells = [f"{metrics[n]:.4f}" if n in metrics else "-" for n in names]
            table.add_row(str(number), str(factories), str(rows), *cells)
        out.print(table)
    if card.gains:
        out.print(gain_table(card.gains))
    if model.local is not None:
        local = model.local
        out.print("\n[bold]Fine-tuned here[/bold]")
        out.print(
            f"  on {local.data.source}: {local.data.train_rows} rows, {local.epochs} epochs; "
            f"held-out {local.data.held_out_rows} rows: before {_metrics(local.before)} → "
            f"after {_metrics(local.after)}",
            highlight=False,
            markup=False,
        )
    out.print("\n[bold]Known limits[/bold]")
    for line in card.limits:
        out.print(f"  {line}", highlight=False, markup=False)
    out.print("\n[bold]How to run it[/bold]")
    for line in card.usage:  # commands to copy: never wrapped
        out.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)


def gain_table(gains: list[tuple[str, str, float, float, float]]) -> Table:
    """Per factory and metric: alone, federated, and the gain (positive: federated is
    better)."""
    table = Table(title="What each factory gained (its own held-out rows)")
    for col in ("factory", "metric", "alone", "federated", "gain"):
        table.add_column(col)
    for org, metric, alone, federated, gain in gains:
        table.add_row(org, metric, f"{alone:.4f}", f"{federated:.4f}", f"{gain:+.4f}")
    return table


def _metrics(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in values.items() if k != "loss")


@model_app.command("predict")
def predict(
    folder: ModelDir,
    data: DataArg,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="predictions.parquet or predictions.csv")
    ] = Path("predictions.parquet"),
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid", help="Skip rows that break a per-row rule instead of refusing."
        ),
    ] = False,
    normal: Annotated[
        str | None,
        typer.Option(help="The class that raises no alarm (default: normal, ok, 0, ...)."),
    ] = None,
    reference: ReferenceOpt = None,
    key: KeyOpt = None,
) -> None:
    """Predict every row of DATA: checked against the model's contract, written with its
    row number, ids and time; a summary per series and the alarms follow."""
    from fedpark.experiments.serving.outputs import output_format
    from fedpark.experiments.serving.predict import PredictionError, PredictOptions, predict_file
    from fedpark.experiments.serving.summary import UnknownClassError

    try:
        output_format(output)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    _data_file(data)
    if output.exists() and output.resolve() == data.resolve():
        raise _fail(f"{output} is the data file itself: write the predictions elsewhere", 2)
    if not output.parent.is_dir():
        raise _fail(f"cannot write {output}: {output.parent} is not a folder", 2)
    model = open_folder(folder, key)
    try:
        model = _with_reference(model, reference)
        options = PredictOptions(skip_invalid=skip_invalid, normal=normal)
        with _RowProgress(data) as advance:
            summary = predict_file(model, data, output, options, advance)
    except PredictionError as exc:
        raise _refused(exc) from None
    except UnknownClassError as exc:  # FedPark's words (the contract's class names)
        raise _fail(str(exc), 2) from None
    except OSError:
        raise _fail(f"cannot write {output}", 2) from None
    print_summary(summary, output)


def _refused(exc: PredictionError) -> typer.Exit:
    """A PredictionError as the CLI ends on it (its message is FedPark's own words): exit 1
    with the validator's report when the data broke the contract, else exit 2."""
    if exc.report is not None:
        _print_refusal(exc.report)
        return _fail(str(exc), 1)
    return _fail(str(exc), 2)


def _said_reference(reference: str | None) -> None:
    out.print(
        f"standardizing with this plant's statistics from {reference}",
        highlight=False,
        markup=False,
    )


def _with_reference(model: ModelFolder, reference: Path | None) -> ModelFolder:
    """The model with a plant's statistics from ``reference`` (its history), when given.

    Raises
    ------
    PredictionError
        The reference cannot give the statistics (FedPark's words).
    """
    if reference is None:
        return model
    from fedpark.experiments.serving.reference import with_reference

    _data_file(reference)
    tuned = with_reference(model, reference)
    _said_reference(tuned.package.features.reference)
    return tuned


def _print_refusal(report: Any) -> None:
    """The validator's report: what breaks the contract, where (rows counted from 0)."""
    for d in report.schema_differences:
        if d.is_error:
            found = f", found {d.found}" if d.found else ""
            what = "missing" if d.kind == "missing" else "of another type"
            out.print(
                f"  column {d.column}: {what} (expected {d.expected}{found})",
                highlight=False,
                markup=False,
            )
    for v in report.violations[:20]:
        rows = ", ".join(str(r) for r in v.first_rows)
        where = f" column {v.column}" if v.column else ""
        out.print(
            f"  {v.rule}{where}: {v.count} rows (first, from 0: {rows}) {v.message}",
            highlight=False,
            markup=False,
        )


class _RowProgress:
    """A progress bar over rows on a terminal; nothing in a log."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.bar: Progress | None = None

    def __enter__(self) -> Any:
        if not out.is_terminal:
            return None
        total = _rows(self.data)
        self.bar = Progress(
            TextColumn("predicting"), BarColumn(), TextColumn("{task.completed} rows"),
            TimeElapsedColumn(), console=out, transient=True,
        )  # fmt: skip
        task = self.bar.add_task("rows", total=total)
        self.bar.start()
        bar = self.bar
        return lambda n: bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _rows(data: Path) -> int | None:
    from fedpark.contracts.reader import open_source

    try:
        return open_source(data).num_rows
    except Exception:  # the prediction itself says what is wrong with the file
        return None


def print_summary(summary: Summary, output: Path) -> None:
    out.print(
        f"[green]predicted[/green] {summary.predicted} of {summary.rows} rows → "
        f"{literal(str(output))}"
        + (f"; skipped {summary.skipped} rows that break the contract" if summary.skipped else "")
        + (f"; {summary.no_window} rows before a full window" if summary.no_window else ""),
        highlight=False,
    )
    if summary.classes and summary.counts:
        table = Table(title="Rows per predicted class")
        table.add_column("series")
        for name in summary.classes:
            table.add_column(name, justify="right")
        for series, counts in sorted(summary.counts.items()):
            table.add_row(Text(series or "(all)"), *(str(int(c)) for c in counts))
        out.print(table)
    if summary.alarm_count:
        table = Table(title=f"Alarms: {summary.alarm_count} (first row of each non-normal stretch)")
        for col in ("series", "row", "time", "predicted"):
            table.add_column(col)
        for alarm in summary.alarms[:20]:
            cells = (alarm.series or "-", str(alarm.row), alarm.time or "-", alarm.predicted)
            table.add_row(*(Text(cell) for cell in cells))
        out.print(table)
        if summary.alarm_count > 20:
            out.print(
                f"… {summary.alarm_count - 20} more: rows where predicted_{summary.label} "
                "turns from normal in the output",
                highlight=False,
                markup=False,
            )
    metrics = summary.metrics()
    if metrics:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "rows")
        out.print(
            f"on the {metrics['rows']} predicted rows that have a label: {shown}",
            highlight=False,
        )


@model_app.command("export-onnx")
def export_onnx(
    folder: ModelDir,
    output: Annotated[Path, typer.Option("-o", "--output", help="The .onnx file.")] = Path(
        "model.onnx"
    ),
    reference: ReferenceOpt = None,
    key: KeyOpt = None,
) -> None:
    """Export to ONNX: one input per contract feature (numbers in their unit, categories as
    strings), standardization and softmax inside, label names in the metadata."""
    import logging
    import warnings

    from fedpark.experiments.serving.onnx_export import export_onnx as export
    from fedpark.experiments.serving.predict import NEEDS_REFERENCE, PredictionError

    model = open_folder(folder, key)
    try:
        model = _with_reference(model, reference)
        if model.package.needs_reference:
            raise PredictionError(NEEDS_REFERENCE)
    except PredictionError as exc:
        raise _refused(exc) from None
    logging.getLogger("torch").setLevel(logging.ERROR)  # the exporter's progress chatter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            export(model, output)
        except OSError:
            raise _fail(f"cannot write {output}", 2) from None
        except Exception as exc:  # the exporter's text is torch's internals, not for users
            raise _fail(f"the ONNX export failed ({type(exc).__name__})", 1) from None
    package = model.package
    inputs = ", ".join(package.features.inputs)
    shape = f"[batch, {package.window}]" if package.window else "[batch]"
    out.print(f"wrote {output}: inputs {inputs} ({shape} each)", markup=False, highlight=False)
    if package.task == "classification":
        out.print("outputs: probabilities, class_index, label", highlight=False)
    else:
        out.print(
            f"output: value in {package.features.label_unit or 'the label unit'}", markup=False
        )


@model_app.command("finetune")
def finetune(
    folder: ModelDir,
    data: DataArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="A new folder.")] = Path(
        "local-model"
    ),
    epochs: Annotated[int, typer.Option(min=1, max=1000, help="Local epochs.")] = 5,
    learning_rate: Annotated[
        float | None, typer.Option(min=0, help="Default: the experiment's.")
    ] = None,
    key: KeyOpt = None,
) -> None:
    """Fine-tune on this factory's rows only: a new model folder that names its parent and
    reports before/after on the most recent rows (held out). It stays here. A model trained
    with normalization 'factory' takes this plant's statistics from DATA and keeps them."""
    from fedpark.experiments.serving.finetune import finetune as tune
    from fedpark.experiments.serving.predict import PredictionError

    _data_file(data)
    model = open_folder(folder, key)
    try:
        with out.status("fine-tuning"):
            local = tune(model, data, output, epochs=epochs, learning_rate=learning_rate)
    except PredictionError as exc:
        raise _refused(exc) from None
    out.print(
        f"[green]fine-tuned[/green] → {literal(str(output))}: "
        f"held-out {local.data.held_out_rows} rows, "
        f"before {_metrics(local.before)}; after {_metrics(local.after)}",
        highlight=False,
    )
    if local.data.held_out_rows < 200:
        out.print(
            f"[yellow]note:[/yellow] only {local.data.held_out_rows} held-out rows: the "
            "before/after figures are noisy; fine-tune on a longer history to trust them",
            highlight=False,
        )


def register(root: typer.Typer) -> None:
    root.add_typer(model_app, name="model")
