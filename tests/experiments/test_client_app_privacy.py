"""No row leaves on the error path: FedPark's ClientApp, given files broken in every way the
malformed corpus knows, each with a sentinel in every row and in the broken cell, answers with
a typed refusal whose serialized bytes (what Flower would send) hold none of them.

Controls: the sentinels are in the files, and Arrow's own error text, which a ClientApp that
forwarded exceptions would have sent, quotes them. The same on Flower's deployment engine,
with the hub's storage, answers and logs searched, is ``tests/experiments/test_k_enforced.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from federation import write_contract_dir
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.common.serde import message_to_proto
from flwr.supercore.task_identity import TaskIdentity
from samples import contract_data, sensor_table

from fedpark.contracts import Contract, contract_sha256, validate_file
from fedpark.contracts.errors import DataError
from fedpark.contracts.reader import open_source
from fedpark.experiments.client_app import app
from fedpark.experiments.protocol import (
    FAILURE_CODE,
    REFUSAL_CODE,
    SPEC_KEY,
    FactoryProblem,
    ProblemKind,
)

SENTINEL = "SENTINEL-CLIENTAPP-x4Rw"
ROWS = 200
Writer = Callable[[Path], None]


def _table() -> pa.Table:
    table = sensor_table(rows=ROWS).drop_columns(["window"])
    names = pa.array([f"{SENTINEL}-{i:04d}" for i in range(ROWS)])
    return table.set_column(table.schema.get_field_index("operator"), "operator", names)


def _csv_lines() -> list[str]:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(_table(), sink)
    return sink.getvalue().to_pybytes().decode().splitlines()


def _csv(edit: Callable[[list[str]], list[str]]) -> Writer:
    return lambda path: path.write_text("\n".join(edit(_csv_lines())) + "\n")


def _row(cells: dict[int, str]) -> Callable[[list[str]], list[str]]:
    """Replace cells of data row 100 (ts 0, machine 1, temp 2, ..., operator 6)."""

    def edit(lines: list[str]) -> list[str]:
        row = lines[101].split(",")
        for index, value in cells.items():
            row[index] = value
        lines[101] = ",".join(row)
        return lines

    return edit


def _parquet_bytes() -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(_table(), sink, compression="none", write_page_checksum=True)
    return bytes(sink.getvalue().to_pybytes())


def _ipc_bytes() -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, _table().schema) as writer:
        writer.write_table(_table())
    return bytes(sink.getvalue().to_pybytes())


def _flip(data: bytes, at: float) -> bytes:
    broken = bytearray(data)
    i = int(len(broken) * at)
    broken[i : i + 64] = bytes(64)
    return bytes(broken)


def _write(suffix: str, make: Callable[[], bytes]) -> tuple[str, Writer]:
    return suffix, lambda path: path.write_bytes(make())


def _temp_as_text(path: Path) -> None:
    table = _table()
    temps = [f"{SENTINEL}-temp-{i}" for i in range(ROWS)]
    pq.write_table(table.set_column(2, "temp", pa.array(temps)), path)


def _nan_temp(path: Path) -> None:
    table = _table()
    temp = table["temp"].to_numpy().copy()
    temp[7] = np.nan
    pq.write_table(table.set_column(2, "temp", pa.array(temp)), path)


# name -> (file suffix, writer, the problem the factory reports)
CORPUS: dict[str, tuple[str, Writer, ProblemKind]] = {
    "csv extra field": (
        ".csv",
        _csv(lambda lines: [*lines[:-1], lines[-1] + f",{SENTINEL}-extra"]),
        ProblemKind.DATA_UNREADABLE,
    ),
    "csv missing field": (
        ".csv",
        _csv(lambda lines: [*lines[:50], ",".join(lines[50].split(",")[:-2]), *lines[51:]]),
        ProblemKind.DATA_UNREADABLE,
    ),
    "csv bad quoting": (".csv", _csv(_row({2: f'"{SENTINEL}'})), ProblemKind.DATA_UNREADABLE),
    "csv wrong type": (
        ".csv",
        _csv(_row({2: f"{SENTINEL}-temp"})),
        ProblemKind.DATA_BREAKS_CONTRACT,
    ),
    # UTF-8 (a unit in it), damaged further down: not a cp1252 file to guess at.
    "csv bad utf-8": (
        ".csv",
        lambda path: path.write_bytes(
            "\n".join(_csv_lines())
            .encode()
            .replace(f"{SENTINEL}-0010".encode(), f"{SENTINEL}-0010 °C".encode())
            .replace(f"{SENTINEL}-0050".encode(), b"\xff\xfe" + SENTINEL.encode())
        ),
        ProblemKind.DATA_UNREADABLE,
    ),
    "csv truncated mid-row": (
        ".csv",
        lambda path: path.write_text("\n".join(_csv_lines())[:-45]),
        ProblemKind.DATA_UNREADABLE,
    ),
    "csv without its header": (
        ".csv",
        _csv(lambda lines: lines[1:]),
        ProblemKind.DATA_BREAKS_CONTRACT,
    ),
    "csv huge string": (
        ".csv",
        _csv(_row({1: SENTINEL * 40_000})),
        ProblemKind.DATA_BREAKS_CONTRACT,
    ),
    "csv nan in a finite column": (
        ".csv",
        _csv(_row({2: "nan"})),
        ProblemKind.DATA_BREAKS_CONTRACT,
    ),
    "parquet truncated": (
        *_write(".parquet", lambda: _parquet_bytes()[: len(_parquet_bytes()) // 2]),
        ProblemKind.DATA_UNREADABLE,
    ),
    "parquet damaged page": (
        *_write(".parquet", lambda: _flip(_parquet_bytes(), 0.4)),
        ProblemKind.DATA_UNREADABLE,
    ),
    "parquet wrong type": (".parquet", _temp_as_text, ProblemKind.DATA_BREAKS_CONTRACT),
    "parquet nan in a finite column": (".parquet", _nan_temp, ProblemKind.DATA_BREAKS_CONTRACT),
    "ipc truncated": (
        *_write(".arrow", lambda: _ipc_bytes()[:-300]),
        ProblemKind.DATA_UNREADABLE,
    ),
    "garbage": (
        *_write(".parquet", lambda: b"PAR1" + SENTINEL.encode() * 100),
        ProblemKind.DATA_UNREADABLE,
    ),
}


@pytest.fixture(scope="module")
def contract() -> Contract:
    data = contract_data()
    data["columns"] = data["columns"][:-1]  # CSV holds no nested column
    data["columns"][2]["nullable"] = False  # CSV reads "nan" as null: here a violation
    return Contract.model_validate(data)


@pytest.fixture(autouse=True)
def _outside_a_run() -> None:
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1


def _train_message(
    contract: Contract,
    tmp: Path,
    data: Path,
    participants: list[str] | None = None,
    run_contract_sha256: str | None = None,
) -> tuple[Message, Context]:
    folder = write_contract_dir(contract, Ed25519PrivateKey.generate(), tmp / "contract")
    spec = {
        "experiment_id": "exp-privacy",
        "contract": contract.model_dump(mode="json"),
        "contract_sha256": run_contract_sha256 or contract_sha256(contract),
        "model": {"kind": "mlp", "hidden": [4]},
        "participants": participants or [],
        "output": {"directory": str(tmp / "out")},
    }
    context = Context(
        run_id=1,
        node_id=5,
        node_config={
            "data-path": str(data),
            "contract-dir": str(folder),
            "org": "bravo",
            "work-dir": str(tmp / "work"),
        },
        state=RecordDict(),
        run_config={SPEC_KEY: json.dumps(spec)},
    )
    content = RecordDict({"arrays": ArrayRecord(), "config": ConfigRecord({"server-round": 1})})
    return Message(content, dst_node_id=5, message_type=MessageType.TRAIN), context


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_a_broken_file_is_refused_and_no_row_is_in_the_reply(
    contract: Contract, tmp_path: Path, case: str
) -> None:
    suffix, write, expected = CORPUS[case]
    data = tmp_path / f"line{suffix}"
    write(data)
    assert SENTINEL.encode() in data.read_bytes()  # control: the file holds the sentinel

    message, context = _train_message(contract, tmp_path, data)
    reply = app(message=message, context=context)

    assert reply.has_error()
    assert reply.error.code in (REFUSAL_CODE, FAILURE_CODE)
    problem = FactoryProblem.model_validate_json(reply.error.reason)
    assert problem.kind is expected, problem.describe()
    wire = message_to_proto(reply).SerializeToString()
    assert SENTINEL.encode() not in wire and SENTINEL not in problem.describe()
    # What factory join prints stays at the factory, and holds no row either.
    notes = (tmp_path / "work" / "events.jsonl").read_text()
    assert "refused" in notes and SENTINEL not in notes


@pytest.mark.parametrize(
    "case", [c for c in sorted(CORPUS) if CORPUS[c][2] is ProblemKind.DATA_BREAKS_CONTRACT]
)
def test_what_a_declaration_sends_holds_no_row(
    contract: Contract, tmp_path: Path, case: str
) -> None:
    suffix, write, _ = CORPUS[case]
    data = tmp_path / f"line{suffix}"
    write(data)
    result = validate_file(contract, data)
    assert not result.report.passed
    sent = result.report.shared().model_dump_json() + result.profile.model_dump_json()
    assert SENTINEL not in sent and "line" not in result.report.shared().source


def test_controls_arrow_quotes_the_row_that_a_forwarding_client_would_have_sent(
    tmp_path: Path,
) -> None:
    """Why the reply must be built, not copied: Arrow's errors quote the data."""
    for case in ("csv extra field", "csv wrong type"):
        suffix, write, _ = CORPUS[case]
        data = tmp_path / f"{case.replace(' ', '-')}{suffix}"
        write(data)
        types = {"temp": pa.float32()}
        with pytest.raises(pa.ArrowInvalid) as raised:
            pacsv.read_csv(data, convert_options=pacsv.ConvertOptions(column_types=types))
        assert SENTINEL in str(raised.value), case
        with pytest.raises(DataError) as ours:
            source = open_source(data, csv_types=types)
            list(source.batches(source.schema.names, 1 << 16))
        assert SENTINEL not in str(ours.value)


def test_a_factory_not_invited_takes_no_part_and_never_opens_its_data(
    contract: Contract, tmp_path: Path
) -> None:
    """Flower sends every connected node the round; one outside the experiment declines."""
    message, context = _train_message(
        contract, tmp_path, tmp_path / "no-such-file.parquet", participants=["acme", "carol"]
    )
    reply = app(message=message, context=context)
    problem = FactoryProblem.model_validate_json(reply.error.reason)
    assert (reply.error.code, problem.kind) == (REFUSAL_CODE, ProblemKind.NOT_INVITED)
    assert "skipped" in (tmp_path / "work" / "events.jsonl").read_text()


def test_a_run_naming_another_contract_than_the_approved_one_is_refused(
    contract: Contract, tmp_path: Path
) -> None:
    """The run's spec says which contract (by sha256); the factory holds the hub-signed one:
    if they differ, it does not train (and does not open its data)."""
    message, context = _train_message(
        contract, tmp_path, tmp_path / "no-such-file.parquet", run_contract_sha256="ab" * 32
    )
    reply = app(message=message, context=context)
    problem = FactoryProblem.model_validate_json(reply.error.reason)
    assert problem.kind is ProblemKind.CONTRACT_MISMATCH, problem.describe()
