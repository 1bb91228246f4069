"""Validate data against a contract in one streaming pass, every rule vectorized.

Memory is bounded by one record batch of the contract's columns, except for ``unique``
columns, whose values are kept (one column, not the file) to find duplicates at the end.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fedpark.contracts.checks import ColumnCheck, dictionary_of
from fedpark.contracts.dialect import CsvDialect, CsvOptions
from fedpark.contracts.document import contract_sha256
from fedpark.contracts.model import ColumnRole, Contract
from fedpark.contracts.reader import (
    CsvValueError,
    DataSource,
    first_unparsable_row,
    open_source,
)
from fedpark.contracts.report import (
    UNPARSABLE_TEXT,
    DataProfile,
    Declaration,
    RuleViolation,
    SchemaDifference,
    ValidationReport,
)
from fedpark.contracts.types import format_type

DEFAULT_BATCH_ROWS = 256 * 1024


def prefetched(batches: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """Read the next batches in a thread while this one is checked (Arrow releases the GIL).

    At most ``depth`` batches wait, so memory stays bounded; errors reach the consumer.
    """
    done = object()
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not offer(batch):
                    return
            offer(done)
        except BaseException as exc:  # handed to the consumer, raised there
            offer(exc)

    reader = threading.Thread(target=produce, name="fedpark-prefetch", daemon=True)
    reader.start()
    try:
        while (item := slots.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def _int_width(t: pa.DataType) -> int:
    return int(t.bit_width)


def is_widening(found: pa.DataType, expected: pa.DataType) -> bool:
    """Whether data of type ``found`` can be read as ``expected`` without loss."""
    if found == expected:
        return True
    t = pa.types
    if t.is_dictionary(found):
        return is_widening(found.value_type, expected) or found == expected
    if t.is_dictionary(expected):
        return is_widening(found, expected.value_type)
    if t.is_integer(found) and t.is_integer(expected):
        if t.is_signed_integer(found) == t.is_signed_integer(expected):
            return _int_width(expected) >= _int_width(found)
        return t.is_unsigned_integer(found) and _int_width(expected) > _int_width(found)
    if t.is_integer(found) and t.is_floating(expected):
        return _int_width(found) < {16: 11, 32: 24, 64: 53}[_int_width(expected)]
    if t.is_floating(found) and t.is_floating(expected):
        return _int_width(expected) >= _int_width(found)
    if t.is_null(found):  # an all-empty column: nulls of any type
        return True
    texts = {pa.string(), pa.large_string(), pa.string_view()}
    binaries = {pa.binary(), pa.large_binary(), pa.binary_view()}
    if any(found in group and expected in group for group in (texts, binaries)):
        return True  # one writer's text is another's large or view text (Polars)
    if (found, expected) == (pa.date32(), pa.date64()):
        return True
    if t.is_decimal(found) and t.is_decimal(expected):
        whole = found.precision - found.scale
        return bool(expected.scale >= found.scale and expected.precision - expected.scale >= whole)
    if t.is_timestamp(found) and t.is_timestamp(expected):
        order = ("s", "ms", "us", "ns")
        return found.tz == expected.tz and order.index(expected.unit) >= order.index(found.unit)
    if (t.is_list(found) or t.is_large_list(found)) and (
        t.is_list(expected) or t.is_large_list(expected)
    ):
        return bool(found.value_type == expected.value_type)
    return False


def compare_schema(contract: Contract, schema: pa.Schema, fmt: str) -> list[SchemaDifference]:
    found = {f.name: f for f in schema}
    differences: list[SchemaDifference] = []
    for column in contract.columns:
        field_ = found.get(column.name)
        if field_ is None:
            differences.append(
                SchemaDifference(
                    column=column.name, kind="missing", expected=_clipped(column.type, 500)
                )
            )
            continue
        if field_.type == column.arrow_type:
            continue
        shown = _describe(field_.type)
        if fmt == "csv" and pa.types.is_nested(column.arrow_type):
            shown = "text (CSV cannot hold nested values)"
        kind = "widened" if is_widening(field_.type, column.arrow_type) else "type"
        differences.append(
            SchemaDifference(
                column=column.name,
                kind=kind,
                expected=_clipped(column.type, 500),
                found=_clipped(shown, 500),
            )
        )
    wanted = {c.name for c in contract.columns}
    differences += [
        SchemaDifference(
            column=_clipped(name), kind="extra", found=_clipped(_describe(f.type), 500)
        )
        for name, f in found.items()
        if name not in wanted
    ]
    return differences


def _clipped(name: str, limit: int = 200) -> str:
    """A file's own column name (a CSV read with the wrong delimiter has its whole header as
    one name) or a type (a struct of many fields), cut to what a report holds."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _describe(dtype: pa.DataType) -> str:
    try:
        return format_type(dtype)
    except ValueError:
        return str(dtype)


@dataclass
class ValidationResult:
    report: ValidationReport
    profile: DataProfile
    dialect: CsvDialect | None = None  # a CSV file's: how it was read (not sent anywhere)

    def declaration(self, name: str) -> Declaration:
        """The declaration of this data as ``name``: report and profile as they may leave
        the factory (see ``ValidationReport.shared`` and ``DataProfile.shared``)."""
        return Declaration(name=name, report=self.report.shared(), profile=self.profile.shared())


def validate_file(
    contract: Contract,
    path: Path,
    *,
    min_category_count: int = 10,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    on_batch: BatchHook | None = None,
    csv_options: CsvOptions | None = None,
) -> ValidationResult:
    """Validate a Parquet, Arrow IPC/Feather or CSV file in bounded memory (``on_batch``:
    see :func:`validate_source`; ``csv_options``: a CSV dialect forced, see
    :func:`fedpark.contracts.reader.open_source`).

    Raises
    ------
    UnreadableDataError
        The file is truncated, garbage or not in a supported format.
    """
    types = {c.name: c.arrow_type for c in contract.columns}
    try:
        source = open_source(path, csv_types=types, csv_options=csv_options)
    except CsvValueError as exc:
        return _csv_value_failure(contract, path, exc)
    try:
        return validate_source(
            contract,
            source,
            min_category_count=min_category_count,
            batch_rows=batch_rows,
            on_batch=on_batch,
        )
    except CsvValueError as exc:
        return _csv_value_failure(contract, path, exc)


# Called with each validated batch (the contract's columns), the number of rows before it,
# and which of its rows broke a rule (per-row rules; ``unique`` and row bounds are known at
# the end only): a consumer that works in the same pass, as prediction does.
BatchHook = Callable[[pa.RecordBatch, int, np.ndarray], None]


def validate_source(
    contract: Contract,
    source: DataSource,
    *,
    min_category_count: int = 10,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    on_batch: BatchHook | None = None,
) -> ValidationResult:
    """Validate an opened source (see :func:`fedpark.contracts.reader.open_source`).

    ``on_batch`` sees every batch once validated, unless a column is missing or of another
    type (then nothing a consumer needs can be relied on, and the report says why).
    """
    source.categorical = tuple(
        c.name
        for c in contract.columns
        if c.type in ("string", "large_string")
        and (c.rules.allowed_values is not None or c.role is ColumnRole.LABEL)
    )
    result = _run(contract, source, source.batches, min_category_count, batch_rows, on_batch)
    result.dialect = source.dialect
    return result


def validate_table(
    contract: Contract,
    table: pa.Table,
    *,
    min_category_count: int = 10,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    name: str = "table",
) -> ValidationResult:
    """Validate an in-memory table (the same rules as for files)."""
    source = DataSource(Path(name), "table", table.schema, table.num_rows)

    def batches(columns: list[str], size: int) -> Iterator[pa.RecordBatch]:
        yield from table.select(columns).to_batches(max_chunksize=size)

    return _run(contract, source, batches, min_category_count, batch_rows)


Batches = Callable[[list[str], int], Iterator[pa.RecordBatch]]


def _run(
    contract: Contract,
    source: DataSource,
    batches: Batches,
    k: int,
    batch_rows: int,
    on_batch: BatchHook | None = None,
) -> ValidationResult:
    differences = compare_schema(contract, source.schema, source.format)
    blocked = {d.column for d in differences if d.is_error}
    checks = [ColumnCheck(c, k) for c in contract.columns if c.name not in blocked]
    columns = [c.column.name for c in checks]
    if blocked:
        on_batch = None
    rows = 0
    if checks or not contract.columns:
        for batch in prefetched(batches(columns, batch_rows)):
            failed = np.zeros(batch.num_rows, bool) if on_batch else None
            arrays = []
            for check, array in zip(checks, batch.columns, strict=True):
                if array.type != check.dtype and not dictionary_of(array, check.dtype):
                    array = pc.cast(array, check.dtype)
                check.failed_rows = failed
                check.feed(array, rows)
                check.failed_rows = None
                arrays.append(array)
            if on_batch is not None and failed is not None:
                on_batch(pa.RecordBatch.from_arrays(arrays, names=columns), rows, failed)
            rows += batch.num_rows
    elif source.num_rows is not None:
        rows = source.num_rows
    for check in checks:
        check.finish(rows)
    violations = [v for check in checks for v in check.results()]
    violations += _row_bounds(contract, rows)
    report = ValidationReport(
        contract_id=contract.id,
        contract_version=contract.version,
        contract_sha256=contract_sha256(contract),
        source=source.path.name,
        format=source.format,
        passed=not violations and not any(d.is_error for d in differences),
        rows=rows,
        rules_checked=sum(c.rules_count for c in checks) + _table_rules(contract),
        schema_differences=differences,
        violations=violations,
    )
    profile = DataProfile(rows=rows, k=k, columns=[c.profile(rows) for c in checks])
    return ValidationResult(report, profile)


def _table_rules(contract: Contract) -> int:
    return int(contract.rows.min_rows is not None) + int(contract.rows.max_rows is not None)


def _row_bounds(contract: Contract, rows: int) -> list[RuleViolation]:
    low, high = contract.rows.min_rows, contract.rows.max_rows
    if low is not None and rows < low:
        return [RuleViolation(rule="min_rows", count=1, message=f"{rows} rows, fewer than {low}")]
    if high is not None and rows > high:
        return [RuleViolation(rule="max_rows", count=1, message=f"{rows} rows, more than {high}")]
    return []


def _csv_value_failure(contract: Contract, path: Path, exc: CsvValueError) -> ValidationResult:
    difference = SchemaDifference(
        column=exc.column,
        kind="type",
        expected=format_type(exc.expected),
        found=UNPARSABLE_TEXT,
    )
    row = first_unparsable_row(path, exc.column, exc.expected, exc.dialect)
    violations = [
        RuleViolation(
            column=exc.column,
            rule="type",
            count=1,
            first_rows=[row],
            message=f"text that does not parse as {format_type(exc.expected)} (first seen)",
        )
        for row in ([row] if row is not None else [])
    ]
    report = ValidationReport(
        contract_id=contract.id,
        contract_version=contract.version,
        contract_sha256=contract_sha256(contract),
        source=path.name,
        format="csv",
        passed=False,
        rows=0,
        rules_checked=0,
        schema_differences=[difference],
        violations=violations,
    )
    return ValidationResult(report, DataProfile(rows=0, k=1), exc.dialect)
