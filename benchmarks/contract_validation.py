"""Contract validation speed and memory: FedPark's validator vs pandera vs a bare read.

Generates a Parquet file of realistic press-line sensor data (default 10 million rows, 20
columns: timestamps, machine and line names, an id, a pii column, 12 float sensors with some
nulls, counters, a flag and a fault label) and a contract with 40+ rules, then times, each in its
own process so that peak RSS is its own:

- ``bare read``: pyarrow reading every column of the file, no rules (the floor);
- ``fedpark``: ``fedpark.contracts.validate_file`` (rules, report and profile);
- ``pandera``: pandera's polars backend (its fastest) with the same rules, eager;
- ``pandera (pandas)``: pandera's classic pandas backend, for reference (``--tools`` to add it).

    python benchmarks/contract_validation.py                 # 10M rows, 3 runs
    python benchmarks/contract_validation.py --rows 1000000 --runs 5

Needs ``pip install 'fedpark[bench]'`` (pandera, polars, pandas). Prints medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SENSORS = {  # name: (type, low, high, mean, sd, null share)
    "temp_die": ("float32", 0, 400, 180, 25, 0.0),
    "temp_oil": ("float32", 0, 150, 55, 6, 0.01),
    "pressure_main": ("float64", 0, 400, 210, 15, 0.0),
    "pressure_aux": ("float64", 0, 50, 12, 2, 0.02),
    "force": ("float64", 0, 5000, 2400, 300, 0.0),
    "vibration_x": ("float32", -50, 50, 0, 3, 0.0),
    "vibration_y": ("float32", -50, 50, 0, 3, 0.0),
    "vibration_z": ("float32", -50, 50, 0, 3, 0.0),
    "current": ("float32", 0, 500, 120, 10, 0.005),
    "voltage": ("float32", 0, 500, 400, 2, 0.0),
    "flow": ("float64", 0, 100, 30, 4, 0.01),
    "humidity": ("float32", 0, 100, 45, 5, 0.03),
}
MACHINES = [f"press-{i:02d}" for i in range(1, 9)]
LINES = ["line-a", "line-b", "line-c"]


def contract_data(rows: int) -> dict[str, Any]:
    columns: list[dict[str, Any]] = [
        {
            "name": "ts",
            "type": "timestamp[ms, tz=UTC]",
            "nullable": False,
            "role": "time",
            "rules": {"monotonic": "strictly_increasing"},
        },
        {
            "name": "machine",
            "type": "string",
            "nullable": False,
            "rules": {"allowed_values": MACHINES, "regex": "press-[0-9]{2}"},
        },
        {"name": "line", "type": "string", "nullable": False, "rules": {"allowed_values": LINES}},
        {
            "name": "serial",
            "type": "int64",
            "nullable": False,
            "role": "id",
            "rules": {"unique": True},
        },
        {"name": "operator", "type": "string", "role": "pii", "rules": {"max_null_fraction": 0.2}},
    ]
    for name, (dtype, low, high, _, _, nulls) in SENSORS.items():
        rules: dict[str, Any] = {"min": low, "max": high, "finite": True}
        if nulls:
            rules["max_null_fraction"] = 0.05
        columns.append(
            {"name": name, "type": dtype, "nullable": nulls > 0, "unit": "si", "rules": rules}
        )
    columns += [
        {
            "name": "cycle_count",
            "type": "int32",
            "nullable": False,
            "rules": {"min": 0, "max": 2_000_000_000},
        },
        {"name": "door_open", "type": "bool", "nullable": False},
        {
            "name": "fault",
            "type": "int8",
            "nullable": False,
            "role": "label",
            "rules": {"allowed_values": [0, 1, 2, 3, 4, 5]},
        },
    ]
    return {
        "id": "press-line",
        "version": "1.0.0",
        "title": "Press line sensors",
        "owner": "bench",
        "columns": columns,
        "rows": {"min_rows": 1, "max_rows": rows * 2},
    }


def generate(path: Path, rows: int, chunk: int = 1_000_000) -> None:
    rng = np.random.default_rng(42)
    start = 1_700_000_000_000
    writer: pq.ParquetWriter | None = None
    for offset in range(0, rows, chunk):
        n = min(chunk, rows - offset)
        index = np.arange(offset, offset + n)
        data: dict[str, pa.Array] = {
            "ts": pa.array(start + index * 100, pa.timestamp("ms", tz="UTC")),
            "machine": pa.array(np.array(MACHINES)[rng.integers(0, len(MACHINES), n)]),
            "line": pa.array(np.array(LINES)[rng.integers(0, len(LINES), n)]),
            "serial": pa.array(index * 7 + 1_000_000),
            "operator": pa.array(
                np.where(
                    rng.random(n) < 0.1,
                    None,
                    np.array([f"op-{i:03d}" for i in range(200)])[rng.integers(0, 200, n)],
                ),
                pa.string(),
            ),
        }
        for name, (dtype, low, high, mean, sd, nulls) in SENSORS.items():
            values = np.clip(rng.normal(mean, sd, n), low, high).astype(dtype)
            mask = rng.random(n) < nulls if nulls else None
            data[name] = pa.array(values, mask=mask)
        data["cycle_count"] = pa.array((index // 3).astype("int32"))
        data["door_open"] = pa.array(rng.random(n) < 0.05)
        data["fault"] = pa.array(
            rng.choice(6, n, p=[0.9, 0.02, 0.02, 0.02, 0.02, 0.02]).astype("int8")
        )
        table = pa.table(data)
        writer = writer or pq.ParquetWriter(path, table.schema, compression="snappy")
        writer.write_table(table, row_group_size=chunk)
    assert writer is not None
    writer.close()


# -- what each child process runs ----------------------------------------------------------


def run_bare(path: Path, contract: dict[str, Any]) -> int:
    """The floor: every column read the way FedPark streams Parquet, no rules."""
    from fedpark.contracts.reader import PARQUET_STREAMING

    rows = 0
    with pq.ParquetFile(path, **PARQUET_STREAMING) as pf:
        for batch in pf.iter_batches(batch_size=256 * 1024, use_threads=True):
            rows += batch.num_rows
    return rows


def run_default_read(path: Path, contract: dict[str, Any]) -> int:
    """pyarrow's defaults (pre-buffered row groups), for reference."""
    rows = 0
    with pq.ParquetFile(path) as pf:
        for batch in pf.iter_batches(batch_size=256 * 1024, use_threads=True):
            rows += batch.num_rows
    return rows


def run_fedpark(path: Path, contract: dict[str, Any]) -> int:
    from fedpark.contracts import Contract, validate_file

    result = validate_file(Contract.model_validate(contract), path)
    assert result.report.passed, result.report.model_dump_json()
    return result.report.rows


def pandera_schema(contract: dict[str, Any]) -> Any:
    import pandera.polars as pa_pl
    import polars as pl

    types = {
        "string": pl.Utf8,
        "int64": pl.Int64,
        "int32": pl.Int32,
        "int8": pl.Int8,
        "bool": pl.Boolean,
        "float32": pl.Float32,
        "float64": pl.Float64,
        "timestamp[ms, tz=UTC]": pl.Datetime("ms", "UTC"),
    }
    check = pa_pl.Check
    columns = {}
    for col in contract["columns"]:
        rules, name = col.get("rules", {}), col["name"]
        checks = []
        if "min" in rules:
            checks.append(check.ge(rules["min"]))
        if "max" in rules:
            checks.append(check.le(rules["max"]))
        if "allowed_values" in rules:
            checks.append(check.isin(rules["allowed_values"]))
        if "regex" in rules:
            checks.append(check.str_matches(f"^(?:{rules['regex']})$"))
        if rules.get("finite"):
            checks.append(
                check(
                    lambda d: d.lazyframe.select(
                        pl.col(d.key).is_finite() | pl.col(d.key).is_null()
                    ),
                    name="finite",
                )
            )
        if "max_null_fraction" in rules:
            share = rules["max_null_fraction"]
            checks.append(
                check(
                    lambda d, s=share: d.lazyframe.select(
                        pl.col(d.key).null_count() / pl.len() <= s
                    ),
                    name="max_null_fraction",
                )
            )
        if rules.get("monotonic"):
            checks.append(
                check(
                    lambda d: d.lazyframe.select(
                        (pl.col(d.key) > pl.col(d.key).shift(1)) | pl.col(d.key).shift(1).is_null()
                    ),
                    name="monotonic",
                )
            )
        columns[name] = pa_pl.Column(
            types[col["type"]],
            checks=checks,
            nullable=col.get("nullable", True),
            unique=bool(rules.get("unique")),
        )
    bounds = contract["rows"]
    return pa_pl.DataFrameSchema(
        columns,
        checks=[
            check(lambda d: d.lazyframe.select(pl.len() >= bounds["min_rows"]), name="min_rows"),
            check(lambda d: d.lazyframe.select(pl.len() <= bounds["max_rows"]), name="max_rows"),
        ],
    )


def run_pandera(path: Path, contract: dict[str, Any]) -> int:
    import polars as pl

    frame = pl.read_parquet(path)
    pandera_schema(contract).validate(frame, lazy=True)
    return frame.height


def pandera_pandas_schema(contract: dict[str, Any]) -> Any:
    import pandas as pd
    import pandera.pandas as pa_pd

    types = {
        "string": None,  # pandas 3 strings: a dtype pandera 0.35 cannot name, left unchecked
        "int64": "int64",
        "int32": "int32",
        "int8": "int8",
        "bool": "bool",
        "float32": "float32",
        "float64": "float64",
        "timestamp[ms, tz=UTC]": pd.DatetimeTZDtype("ms", "UTC"),
    }
    check = pa_pd.Check
    columns = {}
    for col in contract["columns"]:
        rules = col.get("rules", {})
        checks = []
        if "min" in rules:
            checks.append(check.ge(rules["min"]))
        if "max" in rules:
            checks.append(check.le(rules["max"]))
        if "allowed_values" in rules:
            checks.append(check.isin(rules["allowed_values"]))
        if "regex" in rules:
            checks.append(check.str_matches(f"^(?:{rules['regex']})$"))
        if rules.get("finite"):
            checks.append(check(lambda s: np.isfinite(s) | s.isna(), name="finite"))
        if "max_null_fraction" in rules:
            share = rules["max_null_fraction"]
            checks.append(check(lambda s, f=share: s.isna().mean() <= f, name="max_null_fraction"))
        if rules.get("monotonic"):
            checks.append(
                check(lambda s: (s.diff() > pd.Timedelta(0)) | s.diff().isna(), name="monotonic")
            )
        columns[col["name"]] = pa_pd.Column(
            types[col["type"]],
            checks=checks,
            nullable=col.get("nullable", True),
            unique=bool(rules.get("unique")),
        )
    bounds = contract["rows"]
    return pa_pd.DataFrameSchema(
        columns,
        checks=[
            check(lambda df: bounds["min_rows"] <= len(df) <= bounds["max_rows"], name="rows"),
        ],
    )


def run_pandera_pandas(path: Path, contract: dict[str, Any]) -> int:
    import pandas as pd

    frame = pd.read_parquet(path)
    pandera_pandas_schema(contract).validate(frame, lazy=True)
    return len(frame)


RUNNERS = {
    "bare read": run_bare,
    "pyarrow default read": run_default_read,
    "fedpark": run_fedpark,
    "pandera": run_pandera,
    "pandera (pandas)": run_pandera_pandas,
}


def child(tool: str, path: Path, contract_file: Path) -> None:
    contract = json.loads(contract_file.read_text())
    # Imports are not what is measured: load each tool's libraries before the clock starts.
    if tool in ("fedpark", "bare read"):
        import fedpark.contracts.reader  # noqa: F401
    elif tool == "pandera":
        import pandera.polars
        import polars  # noqa: F401
    elif tool == "pandera (pandas)":
        import pandas  # noqa: F401
        import pandera.pandas  # noqa: F401
    started = time.perf_counter()
    rows = RUNNERS[tool](path, contract)
    print(json.dumps({"seconds": time.perf_counter() - started, "rows": rows}))


def measure(tool: str, path: Path, contract_file: Path) -> tuple[float, int, float]:
    """Run one child; return (seconds, rows, peak RSS in MiB) from its own rusage."""
    process = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--child",
            tool,
            "--file",
            str(path),
            "--contract",
            str(contract_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{tool} failed with exit code {process.returncode}")
    result = json.loads(output.strip().splitlines()[-1])
    return result["seconds"], result["rows"], usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tools", default="bare read,pyarrow default read,fedpark,pandera")
    parser.add_argument("--keep", type=Path, help="Keep the generated file in this folder.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--contract", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.file, args.contract)
        return

    folder = args.keep or Path(tempfile.mkdtemp(prefix="fedpark-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path, contract_file = folder / f"sensors-{args.rows}.parquet", folder / "contract.json"
    contract = contract_data(args.rows)
    contract_file.write_text(json.dumps(contract))
    rules = (
        sum(len(c.get("rules", {})) + (not c.get("nullable", True)) for c in contract["columns"])
        + 2
    )
    if not path.exists():
        print(f"generating {args.rows:,} rows x {len(contract['columns'])} columns ...", flush=True)
        generate(path, args.rows)
    size = path.stat().st_size / 2**20
    print(f"file: {path} ({size:.0f} MiB), contract: {rules} rules, runs: {args.runs}")

    tools = args.tools.split(",")
    results: dict[str, list[tuple[float, int, float]]] = {t: [] for t in tools}
    for run in range(args.runs):  # interleaved, so drifts hit every tool alike
        for tool in tools:
            results[tool].append(measure(tool, path, contract_file))
            print(f"  run {run + 1} {tool}: {results[tool][-1][0]:.2f}s", flush=True)

    floor = (
        statistics.median(s for s, _, _ in results["bare read"]) if "bare read" in results else None
    )
    print(
        f"\n{'tool':<12}{'median s':>10}{'rows/s':>14}{'peak RSS MiB':>14}"
        f"{'x bare read':>13}{'x fedpark':>11}"
    )
    fed = statistics.median(s for s, _, _ in results["fedpark"]) if "fedpark" in results else None
    for tool, runs in results.items():
        seconds = statistics.median(s for s, _, _ in runs)
        rss = max(m for _, _, m in runs)
        rows = runs[0][1]
        vs_floor = f"{seconds / floor:.2f}" if floor else "-"
        vs_fed = f"{seconds / fed:.2f}" if fed else "-"
        print(
            f"{tool:<12}{seconds:>10.2f}{rows / seconds:>14,.0f}{rss:>14.0f}"
            f"{vs_floor:>13}{vs_fed:>11}"
        )
    print(f"\n{os.cpu_count()} cores; python {sys.version.split()[0]}; pyarrow {pa.__version__}")


if __name__ == "__main__":
    main()
