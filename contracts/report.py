"""What validation tells, and what may leave a factory: counts, row numbers, statistics.

Neither model has room for a data value: violations carry rule names, counts and row numbers;
the profile carries aggregates, and category counts only for categories seen at least ``k``
times. ``extra="forbid"`` makes the hub refuse anything else smuggled in.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_ROWS_LISTED = 5
# A CSV column's "found" when a cell of it does not parse as the contract's type.
UNPARSABLE_TEXT = "text that does not parse as that type"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SchemaDifference(_Model):
    column: str = Field(max_length=200)
    kind: Literal["missing", "extra", "type", "widened"]
    expected: str | None = Field(default=None, max_length=500)
    found: str | None = Field(default=None, max_length=500)

    @property
    def is_error(self) -> bool:
        return self.kind in ("missing", "type")


class RuleViolation(_Model):
    column: str | None = Field(default=None, max_length=200)
    rule: str = Field(max_length=40)
    count: int = Field(ge=0)
    first_rows: list[int] = Field(default_factory=list, max_length=MAX_ROWS_LISTED)
    message: str = Field(default="", max_length=500)


class ValidationReport(_Model):
    contract_id: str = Field(max_length=63)
    contract_version: str = Field(max_length=64)
    contract_sha256: str = Field(max_length=64)
    source: str = Field(max_length=300, description="The file's name (not its path)")
    format: str = Field(max_length=20)
    passed: bool
    rows: int = Field(ge=0)
    rules_checked: int = Field(ge=0)
    schema_differences: list[SchemaDifference] = Field(default_factory=list, max_length=5000)
    violations: list[RuleViolation] = Field(default_factory=list, max_length=20000)

    def shared(self) -> ValidationReport:
        """The report as it may leave the factory: no name taken from the file itself.

        The file's name and the names of columns the contract does not know come from the
        factory, not from the contract (a CSV without its header row has a row of values
        as its column names); they become "a .csv file" and "extra column #N".
        """
        extras = iter(range(1, len(self.schema_differences) + 1))
        differences = [
            d.model_copy(update={"column": f"extra column #{next(extras)}"})
            if d.kind == "extra"
            else d
            for d in self.schema_differences
        ]
        suffix = Path(self.source).suffix.lower().lstrip(".")
        source = f"a .{suffix} file" if suffix.isalnum() and len(suffix) <= 8 else "a data file"
        return self.model_copy(update={"source": source, "schema_differences": differences})

    def rule_counts(self) -> dict[str, int]:
        """Violations per rule: the only detail a refusal sends to the hub."""
        counts: dict[str, int] = {}
        for v in self.violations:
            counts[v.rule] = counts.get(v.rule, 0) + v.count
        for d in self.schema_differences:
            if d.is_error:
                counts[f"schema.{d.kind}"] = counts.get(f"schema.{d.kind}", 0) + 1
        return counts

    def unreadable_cell(self) -> str | None:
        """Why a CSV file was not read to the end, if a cell stopped it: the column, the
        contract's type and the row (0-based, as everywhere in the report) of the first cell
        that is not of that type. None if reading did not stop at a cell."""
        for d in self.schema_differences:
            if d.kind != "type" or d.found != UNPARSABLE_TEXT:
                continue
            rows = next(
                (
                    v.first_rows
                    for v in self.violations
                    if v.rule == "type" and v.column == d.column
                ),
                [],
            )
            where = f"row {rows[0]} (line {rows[0] + 2} of the file)" if rows else "a row"
            return (
                f"column {json.dumps(d.column, ensure_ascii=False)}: {where} holds a value that "
                f"is not {d.expected}; reading stopped there, so no rule was checked: fix that "
                "cell, or change the column's type in the contract"
            )
        return None


class NumericStats(_Model):
    count: int = Field(ge=0)
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None


class ColumnProfile(_Model):
    name: str = Field(max_length=200)
    null_fraction: float = Field(ge=0, le=1)
    non_finite: int = Field(default=0, ge=0, description="NaN and ±inf values")
    numeric: NumericStats | None = None
    categories: dict[str, Annotated[int, Field(ge=0)]] | None = Field(
        default=None, description="Counts of categories seen at least k times"
    )
    suppressed_categories: int = Field(
        default=0, ge=0, description="Rows in categories seen fewer than k times"
    )


class DataProfile(_Model):
    rows: int = Field(ge=0)
    k: int = Field(ge=1, description="Smallest category count that is reported")
    columns: list[ColumnProfile] = Field(default_factory=list, max_length=5000)

    def shared(self) -> DataProfile:
        """The profile as it may leave the factory: no single reading in it.

        A column's minimum and maximum are readings of one row each: they leave rounded
        outward to two significant digits (a bound, not a reading). Statistics of fewer
        than ``k`` values (a mean of one value is that value) leave as a count alone.
        """
        columns = []
        for column in self.columns:
            stats = column.numeric
            if stats is not None and stats.count < self.k:
                stats = NumericStats(count=stats.count)
            elif stats is not None:
                low, high = bound(stats.min, math.floor), bound(stats.max, math.ceil)
                stats = stats.model_copy(update={"min": low, "max": high})
            columns.append(column.model_copy(update={"numeric": stats}))
        return self.model_copy(update={"columns": columns})

    def column(self, name: str) -> ColumnProfile:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def bound(value: float | None, towards: Callable[[float], int], digits: int = 2) -> float | None:
    """``value`` rounded to ``digits`` significant digits in the direction of ``towards``
    (``math.floor`` for a lower bound, ``math.ceil`` for an upper one). In decimal: a float's
    own scaling underflows for subnormal values (1e-320) and overflows near the largest."""
    if value is None or not math.isfinite(value) or value == 0:
        return value
    exact = Decimal(repr(value))
    step = Decimal(1).scaleb(exact.adjusted() - digits + 1)
    up = towards(0.5) >= 1
    rounded = float(exact.quantize(step, rounding=ROUND_CEILING if up else ROUND_FLOOR))
    if not math.isfinite(rounded):  # past the largest float: that is the bound
        return math.copysign(sys.float_info.max, rounded)
    return rounded


class Declaration(_Model):
    """What a factory sends to declare its data for a contract version: a name for the data
    set, its validation report and its profile, both as they may leave the factory."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]*$")
    report: ValidationReport
    profile: DataProfile


def pooled_moments(
    profiles: Sequence[DataProfile], columns: Sequence[str]
) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each column over every factory's rows, from profiles.

    Pooled: mean = Σnᵢμᵢ / N and var = Σnᵢ(σᵢ² + μᵢ²) / N - mean². Columns nobody profiled
    get (0, 1), and a zero spread becomes 1, so standardizing never divides by zero.
    """
    pooled = {}
    for name in columns:
        stats = [
            c.numeric
            for p in profiles
            for c in p.columns
            if c.name == name and c.numeric is not None and c.numeric.count
        ]
        total = sum(s.count for s in stats)
        if not total:
            pooled[name] = (0.0, 1.0)
            continue
        mean = sum(s.count * (s.mean or 0.0) for s in stats) / total
        second = sum(s.count * ((s.std or 0.0) ** 2 + (s.mean or 0.0) ** 2) for s in stats)
        spread = math.sqrt(max(second / total - mean * mean, 0.0))
        pooled[name] = (mean, spread or 1.0)
    return pooled
