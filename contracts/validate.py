"""Validate data against a contract in one streaming pass, every rule vectorized.

Memory is bounded by one record batch of the contract's columns, except for ``unique``
columns, whose values are kept (one column, not the file) to find duplicates at the end.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from fedpark.contracts.document import contract_sha256
from fedpark.contracts.model import Column, ColumnRole, Contract, Monotonic, bound_scalar
from fedpark.contracts.reader import CsvValueError, DataSource, open_source
from fedpark.contracts.report import (
    MAX_ROWS_LISTED,
    ColumnProfile,
    DataProfile,
    NumericStats,
    RuleViolation,
    SchemaDifference,
    ValidationReport,
)
from fedpark.contracts.types import format_type, is_numeric, is_orderable, value_type

DEFAULT_BATCH_ROWS = 256 * 1024
MAX_CATEGORIES = 200


@dataclass
class _Violations:
    """Counts and first row numbers for one (column, rule)."""

    count: int = 0
    rows: list[int] = field(default_factory=list)
    message: str = ""

    def add(self, mask: pa.Array | pa.ChunkedArray, offset: int, parents: pa.Array | None) -> None:
        count = int(pc.sum(mask).as_py() or 0)
        if not count:
            return
        self.count += count
        if len(self.rows) < MAX_ROWS_LISTED:
            found = pc.indices_nonzero(mask.fill_null(False))[: MAX_ROWS_LISTED * 4]
            if parents is not None:  # flattened list values → their rows
                found = pc.unique(pc.take(parents, found))
            for index in found.to_pylist()[: MAX_ROWS_LISTED - len(self.rows)]:
                self.rows.append(offset + int(index))


@dataclass
class _Moments:
    """Count, mean and sum of squared deviations, merged batch by batch (Chan et al.)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float | None = None
    high: float | None = None

    def merge(self, n: int, mean: float, var: float, low: float, high: float) -> None:
        if n == 0:
            return
        total = self.n + n
        delta = mean - self.mean
        self.m2 += var * n + delta * delta * self.n * n / total
        self.mean += delta * n / total
        self.n = total
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def stats(self) -> NumericStats:
        if self.n == 0:
            return NumericStats(count=0)
        return NumericStats(
            count=self.n,
            min=self.low,
            max=self.high,
            mean=self.mean,
            std=math.sqrt(self.m2 / self.n),
        )


class _ColumnCheck:
    """Rules and profile of one column, fed batch by batch."""

    def __init__(self, column: Column, k: int) -> None:
        self.column = column
        self.dtype = column.arrow_type
        self.values_type = value_type(self.dtype)
        rules = column.rules
        self.low = (
            bound_scalar(rules.min, self.values_type, "min") if rules.min is not None else None
        )
        self.high = (
            bound_scalar(rules.max, self.values_type, "max") if rules.max is not None else None
        )
        self.allowed = (
            pa.array(
                [
                    bound_scalar(v, self.values_type, "allowed").as_py()
                    for v in rules.allowed_values
                ],
                type=self.values_type,
            )
            if rules.allowed_values is not None
            else None
        )
        self.pattern = f"^(?:{rules.regex})$" if rules.regex else None
        self.violations: dict[str, _Violations] = {}
        self.nulls = 0
        self.non_finite = 0
        self.moments = _Moments() if is_numeric(self.values_type) and self._profiled else None
        self.categories: dict[str, int] | None = {} if self._categorical else None
        self.unique_chunks: list[pa.Array] = []
        self.strictly_increasing = True
        self.unique_last: pa.Scalar | None = None
        self.last: pa.Scalar | None = None
        self.k = k

    @property
    def _profiled(self) -> bool:
        return self.column.role not in (ColumnRole.ID, ColumnRole.PII)

    @property
    def _categorical(self) -> bool:
        t = self.values_type
        return (
            self._profiled
            and (
                pa.types.is_string(t)
                or pa.types.is_large_string(t)
                or pa.types.is_boolean(t)
                or (pa.types.is_integer(t) and self.column.role is ColumnRole.LABEL)
                or self.column.rules.allowed_values is not None
            )
            and self.values_type == value_type(self.dtype)
            and not pa.types.is_nested(self.dtype)
        )

    @property
    def rules_count(self) -> int:
        r = self.column.rules
        return sum(
            (
                not self.column.nullable,
                r.min is not None,
                r.max is not None,
                r.allowed_values is not None,
                r.regex is not None,
                r.max_null_fraction is not None,
                r.finite,
                r.unique,
                r.monotonic is not None,
            )
        )

    def _flag(
        self, rule: str, mask: pa.Array, offset: int, parents: pa.Array | None, message: str
    ) -> None:
        entry = self.violations.setdefault(rule, _Violations(message=message))
        entry.add(mask, offset, parents)

    def feed(self, array: pa.Array, offset: int) -> None:
        rules = self.column.rules
        nulls = array.null_count
        self.nulls += nulls
        if nulls and not self.column.nullable:
            self._flag("not_null", array.is_null(), offset, None, "null in a non-nullable column")
        if pa.types.is_dictionary(array.type) and not pa.types.is_dictionary(self.dtype):
            self._feed_dictionary(array, offset)
            return
        values, parents = _flatten(array)
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        bounds = None
        if self.low is not None or self.high is not None or self.moments is not None:
            bounds = pc.min_max(values)
        self._check_range(values, bounds, offset, parents)
        if rules.finite or self.moments is not None:
            self._check_finite(values, bounds, offset, parents, rules.finite)
        if self.allowed is not None:
            outside = pc.and_(
                pc.invert(pc.is_in(values, value_set=self.allowed)), values.is_valid()
            )
            self._flag("allowed_values", outside, offset, parents, "value not in allowed_values")
        if self.pattern is not None:
            misses = pc.invert(pc.match_substring_regex(values, self.pattern))
            self._flag("regex", misses, offset, parents, "value does not match the regex")
        if rules.monotonic is not None:
            self._check_monotonic(values, offset, rules.monotonic)
        if rules.unique:
            self._track_unique(values)
        if self.categories is not None:
            self._count_categories(values)

    def _feed_dictionary(self, array: pa.DictionaryArray, offset: int) -> None:
        """Rules on each distinct value once, mapped back to rows only when one fails."""
        entries = array.dictionary
        checks = []
        if self.allowed is not None:
            outside = pc.invert(pc.is_in(entries, value_set=self.allowed))
            checks.append(("allowed_values", outside, "value not in allowed_values"))
        if self.pattern is not None:
            misses = pc.invert(pc.match_substring_regex(entries, self.pattern))
            checks.append(("regex", misses, "value does not match the regex"))
        for rule, bad_entries, message in checks:
            if pc.any(bad_entries).as_py():
                self._flag(rule, pc.take(bad_entries, array.indices), offset, None, message)
        if self.column.rules.unique:
            self._track_unique(array.dictionary_decode())
        if self.categories is not None:
            counts = pc.value_counts(array.indices.drop_null())
            names = pc.take(entries, counts.field("values")).to_pylist()
            for name, count in zip(names, counts.field("counts").to_pylist(), strict=True):
                self.categories[str(name)] = self.categories.get(str(name), 0) + count

    def _check_range(
        self,
        values: pa.Array,
        bounds: pa.StructScalar | None,
        offset: int,
        parents: pa.Array | None,
    ) -> None:
        if bounds is None:
            return
        lo, hi = bounds["min"], bounds["max"]
        if self.low is not None and lo.is_valid and pc.less(lo, self.low).as_py():
            self._flag(
                "min",
                pc.less(values, self.low),
                offset,
                parents,
                f"value below min {self.column.rules.min!r}",
            )
        if self.high is not None and hi.is_valid and pc.greater(hi, self.high).as_py():
            self._flag(
                "max",
                pc.greater(values, self.high),
                offset,
                parents,
                f"value above max {self.column.rules.max!r}",
            )

    def _check_finite(
        self,
        values: pa.Array,
        bounds: pa.StructScalar | None,
        offset: int,
        parents: pa.Array | None,
        enforce: bool,
    ) -> None:
        floating = pa.types.is_floating(values.type)
        mean = pc.mean(values).as_py() if len(values) else None
        clean = values
        if floating and mean is not None and not math.isfinite(mean):
            bad = pc.invert(pc.is_finite(values))
            self.non_finite += int(pc.sum(bad).as_py() or 0)
            if enforce:
                self._flag("finite", bad, offset, parents, "NaN or infinite value")
            clean = pc.filter(values, pc.is_finite(values))
            mean = pc.mean(clean).as_py() if len(clean) else None
            bounds = pc.min_max(clean)
        if self.moments is not None and mean is not None and bounds is not None:
            n = len(clean) - clean.null_count
            var = pc.variance(clean).as_py() if n else 0.0
            self.moments.merge(
                n,
                float(mean),
                float(var or 0.0),
                float(bounds["min"].as_py()),
                float(bounds["max"].as_py()),
            )

    def _check_monotonic(self, values: pa.Array, offset: int, mode: Monotonic) -> None:
        if len(values) == 0:
            return
        compare = {
            Monotonic.INCREASING: pc.less,
            Monotonic.STRICTLY_INCREASING: pc.less_equal,
            Monotonic.DECREASING: pc.greater,
            Monotonic.STRICTLY_DECREASING: pc.greater_equal,
        }[mode]
        previous = (
            pa.concat_arrays([pa.array([self.last], type=values.type), values[:-1]])
            if self.last is not None
            else pa.concat_arrays([values[:1], values[:-1]])
        )
        breaks = compare(values, previous)
        if self.last is None:
            breaks = pa.concat_arrays([pa.array([False]), breaks[1:]])
        self._flag("monotonic", breaks, offset, None, f"order is not {mode.value}")
        tail = values.drop_null() if values.null_count else values
        if len(tail):
            self.last = tail[-1]

    def _track_unique(self, values: pa.Array) -> None:
        """Keep the values; note whether they are strictly increasing so far (ids often
        are), in which case no hashing is needed to know they are unique."""
        self.unique_chunks.append(values)
        if not self.strictly_increasing or not is_orderable(values.type):
            self.strictly_increasing = False
            return
        valid = values.drop_null() if values.null_count else values
        if len(valid) == 0:
            return
        ordered = len(valid) < 2 or pc.all(pc.greater(valid[1:], valid[:-1])).as_py()
        if self.unique_last is not None and ordered:
            ordered = pc.greater(valid[0], self.unique_last).as_py()
        self.strictly_increasing = bool(ordered)
        self.unique_last = valid[-1]

    def _count_categories(self, values: pa.Array) -> None:
        assert self.categories is not None
        counts = pc.value_counts(values.drop_null())
        for item in counts.to_pylist():
            key = str(item["values"])
            self.categories[key] = self.categories.get(key, 0) + item["counts"]
        if len(self.categories) > MAX_CATEGORIES * 50:  # high cardinality: not a category
            self.categories = None

    def finish(self, rows: int) -> None:
        rules = self.column.rules
        if (
            rules.max_null_fraction is not None
            and rows
            and self.nulls / rows > rules.max_null_fraction
        ):
            self.violations["max_null_fraction"] = _Violations(
                count=self.nulls,
                message=f"null fraction {self.nulls / rows:.4f} above {rules.max_null_fraction}",
            )
        if rules.unique and self.strictly_increasing:
            self.unique_chunks = []  # strictly increasing values are all distinct
        if rules.unique and self.unique_chunks:
            values = pa.chunked_array(self.unique_chunks).combine_chunks()
            counts = pc.value_counts(values.drop_null())
            duplicated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
            if len(duplicated):
                mask = pc.is_in(values, value_set=duplicated)
                self._flag("unique", mask, 0, None, "value appears more than once")
            self.unique_chunks = []

    def profile(self, rows: int) -> ColumnProfile:
        categories, suppressed = None, 0
        if self.categories is not None and len(self.categories) <= MAX_CATEGORIES:
            categories = {k: v for k, v in self.categories.items() if v >= self.k}
            suppressed = sum(v for v in self.categories.values() if v < self.k)
        return ColumnProfile(
            name=self.column.name,
            null_fraction=self.nulls / rows if rows else 0.0,
            non_finite=self.non_finite,
            numeric=self.moments.stats() if self.moments is not None else None,
            categories=categories,
            suppressed_categories=suppressed,
        )

    def results(self) -> list[RuleViolation]:
        return [
            RuleViolation(
                column=self.column.name,
                rule=rule,
                count=v.count,
                first_rows=v.rows,
                message=v.message,
            )
            for rule, v in self.violations.items()
            if v.count
        ]


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
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        reader.join(timeout=5)


def _dictionary_of(array: pa.Array, dtype: pa.DataType) -> bool:
    """A dictionary-encoded read of a plain column: rules run on its dictionary."""
    return bool(pa.types.is_dictionary(array.type) and array.type.value_type == dtype)


def _flatten(array: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """List values flattened to one array, with the row each value came from."""
    parents: pa.Array | None = None
    while (
        pa.types.is_list(array.type)
        or pa.types.is_large_list(array.type)
        or pa.types.is_fixed_size_list(array.type)
    ):
        level = pc.list_parent_indices(array)
        parents = level if parents is None else pc.take(parents, level)
        array = pc.list_flatten(array)
    return array, parents


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
    pairs = {
        (pa.string(), pa.large_string()),
        (pa.large_string(), pa.string()),
        (pa.binary(), pa.large_binary()),
        (pa.large_binary(), pa.binary()),
        (pa.date32(), pa.date64()),
    }
    if (found, expected) in pairs:
        return True
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
                SchemaDifference(column=column.name, kind="missing", expected=column.type)
            )
            continue
        if field_.type == column.arrow_type:
            continue
        shown = _describe(field_.type)
        if fmt == "csv" and pa.types.is_nested(column.arrow_type):
            shown = "text (CSV cannot hold nested values)"
        kind = "widened" if is_widening(field_.type, column.arrow_type) else "type"
        differences.append(
            SchemaDifference(column=column.name, kind=kind, expected=column.type, found=shown)
        )
    wanted = {c.name for c in contract.columns}
    differences += [
        SchemaDifference(column=name, kind="extra", found=_describe(f.type))
        for name, f in found.items()
        if name not in wanted
    ]
    return differences


def _describe(dtype: pa.DataType) -> str:
    try:
        return format_type(dtype)
    except ValueError:
        return str(dtype)


@dataclass
class ValidationResult:
    report: ValidationReport
    profile: DataProfile


def validate_file(
    contract: Contract,
    path: Path,
    *,
    min_category_count: int = 10,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> ValidationResult:
    """Validate a Parquet, Arrow IPC/Feather or CSV file in bounded memory.

    Raises
    ------
    UnreadableDataError
        The file is truncated, garbage or not in a supported format.
    """
    types = {c.name: c.arrow_type for c in contract.columns}
    try:
        source = open_source(path, csv_types=types)
    except CsvValueError as exc:
        return _csv_value_failure(contract, path, exc)
    try:
        return validate_source(
            contract, source, min_category_count=min_category_count, batch_rows=batch_rows
        )
    except CsvValueError as exc:
        return _csv_value_failure(contract, path, exc)


def validate_source(
    contract: Contract,
    source: DataSource,
    *,
    min_category_count: int = 10,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> ValidationResult:
    """Validate an opened source (see :func:`fedpark.contracts.reader.open_source`)."""
    source.categorical = tuple(
        c.name
        for c in contract.columns
        if c.type in ("string", "large_string")
        and (c.rules.allowed_values is not None or c.role is ColumnRole.LABEL)
    )
    return _run(contract, source, source.batches, min_category_count, batch_rows)


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
    contract: Contract, source: DataSource, batches: Batches, k: int, batch_rows: int
) -> ValidationResult:
    differences = compare_schema(contract, source.schema, source.format)
    blocked = {d.column for d in differences if d.is_error}
    checks = [_ColumnCheck(c, k) for c in contract.columns if c.name not in blocked]
    columns = [c.column.name for c in checks]
    rows = 0
    if checks or not contract.columns:
        for batch in prefetched(batches(columns, batch_rows)):
            for check, array in zip(checks, batch.columns, strict=True):
                if array.type != check.dtype and not _dictionary_of(array, check.dtype):
                    array = pc.cast(array, check.dtype)
                check.feed(array, rows)
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
        found="text that does not parse as that type",
    )
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
    )
    return ValidationResult(report, DataProfile(rows=0, k=1))
