"""A corpus of broken factory files: `fedpark contract validate` answers each with a clear
verdict (exit 1: breaks the contract, exit 2: unreadable), never a crash or a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from clirunner import CliRunner
from samples import contract_data, sensor_table

from fedpark.clients.cli.main import app

runner = CliRunner()
Writer = Callable[[Path], None]


def _parquet(make: Callable[[], pa.Table]) -> Writer:
    # The table is made when the case runs: at collection every run would pay for them all.
    return lambda path: pq.write_table(make(), path)


def _replace(column: str, values: pa.Array) -> pa.Table:
    table = sensor_table(rows=200)
    return table.set_column(table.schema.get_field_index(column), column, values)


def _bytes(make: Callable[[Path], bytes]) -> Writer:
    return lambda path: path.write_bytes(make(path))


def _good_parquet() -> bytes:
    """Written with page checksums, as `fedpark data` writes: corruption is then detectable
    (without them a damaged uncompressed page can read as other numbers: docs/security.md)."""
    sink = pa.BufferOutputStream()
    pq.write_table(sensor_table(rows=200), sink, write_page_checksum=True, compression="none")
    return bytes(sink.getvalue().to_pybytes())


def _good_ipc() -> bytes:
    sink = pa.BufferOutputStream()
    table = sensor_table(rows=200)
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _flipped(data: bytes, at: float) -> bytes:
    corrupted = bytearray(data)
    i = int(len(corrupted) * at)
    corrupted[i : i + 64] = bytes(64)
    return bytes(corrupted)


ROWS = 200
# case -> (file name, how to write it, expected exit code)
CORPUS: dict[str, tuple[str, Writer, int]] = {
    "empty parquet": ("e.parquet", _bytes(lambda p: b""), 2),
    "parquet magic only": ("m.parquet", _bytes(lambda p: b"PAR1"), 2),
    "truncated parquet (half)": (
        "t.parquet",
        _bytes(lambda p: _good_parquet()[: len(_good_parquet()) // 2]),
        2,
    ),
    "truncated parquet (footer cut)": ("f.parquet", _bytes(lambda p: _good_parquet()[:-9]), 2),
    "parquet with a zeroed page": (
        "z.parquet",
        _bytes(lambda p: _flipped(_good_parquet(), 0.3)),
        2,
    ),
    "garbage parquet": ("g.parquet", _bytes(lambda p: bytes(range(256)) * 64), 2),
    "empty IPC": ("e.arrow", _bytes(lambda p: b""), 2),
    "truncated IPC": ("t.arrow", _bytes(lambda p: _good_ipc()[: len(_good_ipc()) // 2]), 2),
    "garbage IPC": ("g.arrow", _bytes(lambda p: b"ARROW1\x00\x00" + b"\xff" * 5000), 2),
    "unknown extension": ("data.xlsx", _bytes(lambda p: b"PK\x03\x04"), 2),
    "directory named like a file": ("d.parquet", lambda p: p.mkdir(), 2),
    "CSV of binary garbage": ("g.csv", _bytes(lambda p: bytes(range(256)) * 64), 2),
    "CSV with a ragged row": (
        "r.csv",
        _bytes(lambda p: b"ts,machine,temp\n1,press-1,60\n2,press-1\n"),
        2,
    ),
    "CSV with text in a number column": (
        "x.csv",
        _bytes(
            lambda p: (
                b"ts,machine,temp,pressure,fault,serial,operator\n"
                b"2024-01-01T00:00:00Z,press-1,hot,3.0,1,1,op\n"
            )
        ),
        1,  # readable, and it breaks the contract: "text that does not parse as that type"
    ),
    "CSV with only a header": ("h.csv", _bytes(lambda p: b"ts,machine,temp\n"), 1),
    "wrong column type": (
        "w.parquet",
        _parquet(lambda: _replace("temp", pa.array(["60"] * ROWS))),
        1,
    ),
    "missing column": (
        "m2.parquet",
        _parquet(lambda: sensor_table(rows=ROWS).drop_columns(["temp"])),
        1,
    ),
    "NaN readings": (
        "nan.parquet",
        _parquet(lambda: _replace("temp", pa.array(np.full(ROWS, np.nan, np.float32)))),
        1,
    ),
    "infinite readings": (
        "inf.parquet",
        _parquet(lambda: _replace("temp", pa.array(np.full(ROWS, np.inf, np.float32)))),
        1,
    ),
    "10 MB strings": (
        "big.parquet",
        _parquet(lambda: _replace("operator", pa.array(["x" * 10_000_000] + ["op"] * (ROWS - 1)))),
        0,  # a pii column without rules: long text is allowed, and nothing breaks
    ),
    "label outside its values": (
        "label.parquet",
        _parquet(lambda: _replace("fault", pa.array(np.full(ROWS, 99, np.int32)))),
        1,
    ),
    "nested values where a number belongs": (
        "nested.parquet",
        _parquet(lambda: _replace("temp", pa.array([[1.0, 2.0]] * ROWS, pa.list_(pa.float32())))),
        1,
    ),
    "duplicate ids": (
        "dup.parquet",
        _parquet(lambda: _replace("serial", pa.array(np.zeros(ROWS, np.int64)))),
        1,
    ),
    "time going backwards": (
        "time.parquet",
        _parquet(
            lambda: _replace(
                "ts",
                pa.array(
                    np.arange(ROWS, 0, -1, dtype=np.int64) * 1000, pa.timestamp("ms", tz="UTC")
                ),
            )
        ),
        1,
    ),
    "no rows at all": ("none.parquet", _parquet(lambda: sensor_table(rows=200).slice(0, 0)), 1),
}


@pytest.fixture(scope="module")
def contract_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("contract") / "contract.json"
    path.write_text(json.dumps(contract_data()))
    return path


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_broken_file_gets_a_clear_verdict(case: str, contract_file: Path, tmp_path: Path) -> None:
    name, write, expected = CORPUS[case]
    path = tmp_path / name
    write(path)
    result = runner.invoke(app, ["contract", "validate", str(contract_file), str(path)])
    output = result.output
    assert result.exit_code == expected, (case, result.exit_code, output[-2000:])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in output
    if expected == 2:
        assert name in output  # says which file it could not read
    if expected == 1:
        assert "FAILED" in output


def test_the_corpus_covers_every_format() -> None:
    suffixes = {Path(name).suffix for name, _, _ in CORPUS.values()}
    assert {".parquet", ".arrow", ".csv"} <= suffixes and len(CORPUS) >= 25
