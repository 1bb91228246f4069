"""Open Parquet, Arrow IPC/Feather and CSV files as a stream of record batches.

Only the contract's columns are read (extra columns are reported, never loaded), in batches,
so memory stays bounded whatever the file size. Every failure to read becomes an
:class:`UnreadableDataError` with a message a person can act on and no data values in it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from fedpark.contracts.errors import UnreadableDataError, UnsupportedDataError

_READ_ERRORS = (pa.ArrowException, OSError, ValueError)
# Stream column chunks through a 1 MiB buffer instead of pre-buffering whole row groups:
# peak memory drops from ~1 GiB to ~300 MiB on 1M-row row groups, and reads get faster.
# Page checksums catch bit flips in pages written with them.
PARQUET_STREAMING: dict[str, Any] = {
    "pre_buffer": False,
    "buffer_size": 1 << 20,
    "page_checksum_verification": True,
}
_CSV_COLUMN = re.compile(r"CSV column #(\d+)")
PARQUET_MAGIC = b"PAR1"
IPC_FILE_MAGIC = b"ARROW1"
IPC_STREAM_MAGIC = b"\xff\xff\xff\xff"


@dataclass
class DataSource:
    """An opened file: its format, its schema and a way to stream the wanted columns."""

    path: Path
    format: str  # parquet | ipc-file | ipc-stream | csv
    schema: pa.Schema
    num_rows: int | None = None

    # Low-cardinality string columns to read dictionary-encoded (Parquet only): rules then
    # run once per distinct value instead of once per row.
    categorical: tuple[str, ...] = ()

    def batches(self, columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
        try:
            yield from _BATCHES[self.format](self, columns, batch_size)
        except CsvValueError:
            raise
        except _READ_ERRORS as exc:
            raise UnreadableDataError(
                f"{self.path.name}: reading failed part-way through ({_short(exc)}); "
                "the file is truncated or corrupted"
            ) from None


class CsvValueError(UnreadableDataError):
    """A CSV cell that cannot be read as its contract type (the value is not repeated)."""

    def __init__(self, column: str, expected: pa.DataType) -> None:
        self.column, self.expected = column, expected
        super().__init__(f"CSV column {column!r} holds values that are not {expected}")


def detect_format(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise UnreadableDataError(f"cannot open {path}: {exc.strerror}") from None
    suffix = path.suffix.lower()
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.startswith(IPC_FILE_MAGIC):
        return "ipc-file"
    if head.startswith(IPC_STREAM_MAGIC):
        return "ipc-stream"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if not head:
        raise UnreadableDataError(f"{path.name} is empty")
    if suffix in (".parquet", ".pq"):
        raise UnreadableDataError(f"{path.name} is not a Parquet file (no PAR1 magic bytes)")
    if suffix in (".arrow", ".feather", ".ipc", ".arrows"):
        raise UnreadableDataError(f"{path.name} is not an Arrow IPC/Feather file")
    raise UnsupportedDataError(
        f"{path.name}: unknown format; use Parquet, Arrow IPC/Feather or CSV (.csv)"
    )


def open_source(path: Path, csv_types: dict[str, pa.DataType] | None = None) -> DataSource:
    """Open ``path`` and read its schema (not its rows).

    Parameters
    ----------
    path
        The data file.
    csv_types
        Column types to read a CSV file with (the contract's); CSV has no schema of its own.
    """
    fmt = detect_format(path)
    try:
        if fmt == "parquet":
            meta = pq.read_metadata(path)
            return DataSource(path, fmt, meta.schema.to_arrow_schema(), meta.num_rows)
        if fmt == "ipc-file":
            with pa.memory_map(str(path)) as source:
                reader = ipc.open_file(source)
                return DataSource(path, fmt, reader.schema)
        if fmt == "ipc-stream":
            with pa.OSFile(str(path)) as source:
                return DataSource(path, fmt, ipc.open_stream(source).schema)
        with pacsv.open_csv(path, **_csv_options(path, csv_types or {}, 1 << 16)) as reader:
            return DataSource(path, fmt, reader.schema)
    except _READ_ERRORS as exc:
        if fmt == "csv":
            _raise_csv_value_error(exc, path, csv_types or {})
        raise UnreadableDataError(
            f"cannot read {path.name} as {fmt}: {_short(exc)} (truncated or corrupted?)"
        ) from None


def _csv_options(path: Path, types: dict[str, pa.DataType], block_size: int) -> dict[str, object]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    return {
        "read_options": pacsv.ReadOptions(block_size=block_size),
        "parse_options": pacsv.ParseOptions(delimiter=delimiter),
        "convert_options": pacsv.ConvertOptions(
            column_types={k: v for k, v in types.items() if _csv_can_hold(v)},
            strings_can_be_null=True,
        ),
    }


def _csv_can_hold(dtype: pa.DataType) -> bool:
    return not (pa.types.is_nested(dtype) or pa.types.is_dictionary(dtype))


def _raise_csv_value_error(exc: BaseException, path: Path, types: dict[str, pa.DataType]) -> None:
    match = _CSV_COLUMN.search(str(exc))
    if match and "conversion error" in str(exc).lower():
        header = _csv_header(path)
        index = int(match.group(1))
        if index < len(header) and header[index] in types:
            raise CsvValueError(header[index], types[header[index]]) from None


def _csv_header(path: Path) -> list[str]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        return next(csv.reader([fh.readline()], delimiter=delimiter), [])


def _parquet(source: DataSource, columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
    dictionary = [c for c in source.categorical if c in columns]
    with pq.ParquetFile(source.path, read_dictionary=dictionary or None, **PARQUET_STREAMING) as pf:
        yield from pf.iter_batches(batch_size=batch_size, columns=columns, use_threads=True)


def _ipc_file(source: DataSource, columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
    with pa.memory_map(str(source.path)) as mm:
        reader = ipc.open_file(mm)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i).select(columns)


def _ipc_stream(
    source: DataSource, columns: list[str], batch_size: int
) -> Iterator[pa.RecordBatch]:
    with pa.OSFile(str(source.path)) as fh:
        for batch in ipc.open_stream(fh):
            yield batch.select(columns)


def _csv(source: DataSource, columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
    types = {f.name: f.type for f in source.schema}
    options = _csv_options(source.path, types, 8 << 20)
    convert: pacsv.ConvertOptions = options["convert_options"]
    convert.include_columns = columns
    try:
        with pacsv.open_csv(source.path, **options) as reader:
            yield from reader
    except _READ_ERRORS as exc:
        _raise_csv_value_error(exc, source.path, types)
        raise


_BATCHES = {
    "parquet": _parquet,
    "ipc-file": _ipc_file,
    "ipc-stream": _ipc_stream,
    "csv": _csv,
}


def _short(exc: BaseException) -> str:
    """Arrow's message without its C++ source locations; cut to one line."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]
