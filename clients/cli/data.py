"""``fedpark data``: real industrial data sets as factory files, each with its contract.

Every command writes one folder per factory (a Parquet file and nothing else of the factory's)
plus ``contract.json`` describing them, ready for ``fedpark contract create`` and
``fedpark factory join``. Nothing is downloaded: the data come from installed packages.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fedpark.clients.cli.common import fail, out

# numpy, pyarrow and fedpark.datasets are imported inside the commands: `fedpark --help` and
# the other command groups start without them.
if TYPE_CHECKING:
    import pyarrow as pa

app = typer.Typer(
    help="Generate or partition factory data sets (TEP plants, C-MAPSS engines, Fashion-MNIST).",
    no_args_is_help=True,
)


class Scheme(StrEnum):
    """NIID-Bench's partitions (see ``fedpark.datasets.partition``)."""

    IID = "iid"
    DIRICHLET = "dirichlet"
    CLASSES = "classes"
    QUANTITY = "quantity"


class AnyScheme(StrEnum):
    IID = "iid"
    DIRICHLET = "dirichlet"
    CLASSES = "classes"
    QUANTITY = "quantity"
    NATURAL = "natural"


ClientsOpt = Annotated[int, typer.Option(min=1, help="Number of clients (factories).")]
AlphaOpt = Annotated[
    float, typer.Option(help="Dirichlet concentration (dirichlet, quantity); small = skewed.")
]
ClassesOpt = Annotated[int, typer.Option(help="Classes per client (classes: NIID-Bench's #C).")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the random split.")]
MinSizeOpt = Annotated[
    int, typer.Option(help="Fewest rows per client (dirichlet, quantity); redrawn until met.")
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder to write (new or empty).")]


_fail = fail


def _empty_folder(path: Path) -> None:
    """Refuse a folder with files in it: stale client folders from an earlier split with more
    clients would otherwise look like part of this one."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise _fail(f"{path} exists and is not an empty folder; choose a new one")
    path.mkdir(parents=True, exist_ok=True)


def _client_folder(index: int) -> str:
    return f"client-{index + 1:02d}"


def _part_folder(key_column: str, value: Any) -> str:
    """A folder name for a natural part: the value as a slug, prefixed when not a name."""
    text = str(value)
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not isinstance(value, str) or not slug:
        slug = re.sub(r"[^a-z0-9]+", "-", f"{key_column}-{text}".lower()).strip("-")
    return slug


def _write_parts(
    parts: dict[str, pa.Table], folder: Path, file_name: str, label: str | None
) -> list[dict[str, Any]]:
    import pyarrow.compute as pc

    from fedpark.datasets.io import write_parquet

    summary = []
    for name, table in parts.items():
        (folder / name).mkdir()
        write_parquet(table, folder / name / file_name)
        entry: dict[str, Any] = {"client": name, "rows": table.num_rows}
        if label is not None:
            counts = pc.value_counts(table[label]).to_pylist()
            entry["labels"] = {str(c["values"]): c["counts"] for c in counts}
        summary.append(entry)
    return summary


def _show(summary: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for column in ("client", "rows", "labels"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for entry in summary:
        labels = entry.get("labels")
        shown = "-" if labels is None else ", ".join(f"{k}:{v}" for k, v in sorted(labels.items()))
        table.add_row(entry["client"], str(entry["rows"]), shown)
    out.print(table)


@app.command("fashion-mnist")
def fashion_mnist(
    out_dir: OutOpt,
    clients: ClientsOpt = 10,
    scheme: Annotated[Scheme, typer.Option(help="How to split the training set.")] = Scheme.IID,
    alpha: AlphaOpt = 0.5,
    classes: ClassesOpt = 2,
    seed: SeedOpt = 0,
    min_size: MinSizeOpt = 10,
    source: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the IDX files (default: $FEDPARK_FASHION_MNIST, else "
            "/usr/share/datasets/fashion-mnist from the dataset-fashion-mnist package)."
        ),
    ] = None,
    owner: Annotated[str, typer.Option(help="Owner named in contract.json.")] = "fedpark",
) -> None:
    """Split Fashion-MNIST's training set among clients (NIID-Bench's schemes).

    Writes DIR/client-01/train.parquet ... one per client, DIR/test.parquet (the whole
    10k test set, for global evaluation), DIR/contract.json and DIR/partition.json.
    """
    from fedpark.datasets import fashion_mnist as fm
    from fedpark.datasets.partition import partition

    try:
        train_images, train_labels = fm.load("train", source)
        test_images, test_labels = fm.load("test", source)
    except (fm.FashionMnistMissingError, fm.FashionMnistError) as exc:
        raise _fail(str(exc)) from None
    train = fm.to_table(train_images, train_labels)
    try:
        parts = partition(
            train,
            scheme.value,
            clients=clients,
            label="label",
            alpha=alpha,
            classes=classes,
            seed=seed,
            min_size=min_size,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _empty_folder(out_dir)
    from fedpark.datasets.io import write_parquet

    named = {_client_folder(i): table for i, table in enumerate(parts)}
    summary = _write_parts(named, out_dir, "train.parquet", "label")
    write_parquet(fm.to_table(test_images, test_labels), out_dir / "test.parquet")
    (out_dir / "contract.json").write_text(json.dumps(fm.contract_document(owner), indent=2))
    settings = {"scheme": scheme.value, "clients": clients, "seed": seed}
    settings |= _scheme_settings(scheme.value, alpha, classes, min_size)
    manifest = {"source": "fashion-mnist", **settings, "parts": summary}
    (out_dir / "partition.json").write_text(json.dumps(manifest, indent=2))
    _show(summary, f"Fashion-MNIST, {scheme.value} split, seed {seed}")
    out.print(
        f"wrote {len(parts)} clients, test.parquet and contract.json to {out_dir}",
        markup=False,
        soft_wrap=True,
    )


@app.command("partition")
def partition_file(
    data: Annotated[Path, typer.Argument(help="Parquet file to split.")],
    out_dir: OutOpt,
    scheme: Annotated[AnyScheme, typer.Option(help="How to split the rows.")],
    label: Annotated[
        str | None, typer.Option(help="Label column (needed by dirichlet and classes).")
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="Column naming each row's part (natural: plant, engine).")
    ] = None,
    clients: ClientsOpt = 10,
    alpha: AlphaOpt = 0.5,
    classes: ClassesOpt = 2,
    seed: SeedOpt = 0,
    min_size: MinSizeOpt = 10,
) -> None:
    """Split any Parquet file among clients, or by a key column (--scheme natural).

    Writes DIR/client-01/NAME.parquet ... (natural: DIR/VALUE/NAME.parquet, one folder per
    key value), NAME being the input's file name, and DIR/partition.json.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fedpark.datasets.partition import partition

    if scheme is AnyScheme.NATURAL and key is None:
        raise _fail("--scheme natural needs --key COLUMN (e.g. plant, unit)")
    try:
        table = pq.read_table(data)
    except (OSError, pa.ArrowException):  # Arrow's text may quote the file's bytes
        raise _fail(
            f"cannot read {data} as Parquet: missing, unreadable, not Parquet, or damaged"
        ) from None
    if label is not None and label not in table.column_names:
        raise _fail(
            f"no column {label!r} in {data.name} (columns: {', '.join(table.column_names)})"
        )
    try:
        split = partition(
            table,
            scheme.value,
            clients=clients,
            label=label,
            key=key,
            alpha=alpha,
            classes=classes,
            seed=seed,
            min_size=min_size,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if isinstance(split, dict):
        assert key is not None
        named = {_part_folder(key, value): part for value, part in split.items()}
        if len(named) != len(split):
            raise _fail(
                f"values of {key!r} differ only in case or punctuation; cannot name folders"
            )
    else:
        named = {_client_folder(i): part for i, part in enumerate(split)}
    _empty_folder(out_dir)
    summary = _write_parts(named, out_dir, data.name, label)
    settings: dict[str, Any] = {"scheme": scheme.value, "label": label}
    if scheme is AnyScheme.NATURAL:
        settings["key"] = key
    else:
        settings |= {"clients": clients, "seed": seed}
        settings |= _scheme_settings(scheme.value, alpha, classes, min_size)
    manifest = {"source": data.name, **settings, "parts": summary}
    (out_dir / "partition.json").write_text(json.dumps(manifest, indent=2))
    _show(summary, f"{data.name}, {scheme.value} split")
    out.print(f"wrote {len(named)} parts to {out_dir}", markup=False, soft_wrap=True)


def _scheme_settings(scheme: str, alpha: float, classes: int, min_size: int) -> dict[str, Any]:
    """The settings the scheme used (the others would mislead a reader of partition.json)."""
    if scheme in ("dirichlet", "quantity"):
        return {"alpha": alpha, "min_size": min_size}
    if scheme == "classes":
        return {"classes_per_client": classes}
    return {}


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")
