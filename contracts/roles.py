"""What a column is for, guessed from its name and from how its values spread over files.

A draft inferred from several plants' files sees what one file cannot: a column constant in
each file but different from file to file (``plant``) names where a row comes from, and one
whose values no two files share (``run``) keys each file's own series. Either becomes an
``id`` column: it never reaches a model, and a new plant's name does not break the contract.
Every guess comes with its reason, for the draft's comments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa

from fedpark.contracts.model import ColumnRole
from fedpark.contracts.report import ColumnProfile
from fedpark.contracts.types import is_temporal

_ROLE_HINTS: list[tuple[re.Pattern[str], ColumnRole]] = [
    (re.compile(r"(^|_)(id|uuid|serial|serial_no|batch_id|lot)$", re.I), ColumnRole.ID),
    (re.compile(r"(name|email|operator|employee|phone|address|badge)", re.I), ColumnRole.PII),
    (re.compile(r"^(label|target|class|fault|fault_type|defect|rul|y)$", re.I), ColumnRole.LABEL),
    (re.compile(r"^(time|timestamp|ts|datetime|date|event_time)$", re.I), ColumnRole.TIME),
]
# Words that name where a row comes from, or the series it belongs to.
IDENTITY_WORDS = frozenset(
    {
        "plant", "site", "factory", "fab", "run", "series", "batch", "lot", "machine", "line",
        "station", "asset", "equipment", "device", "tool", "engine",
    }
)  # fmt: skip
# Words that name a property of the process, even when each plant has its own value.
ATTRIBUTE_WORDS = frozenset(
    {
        "mode", "state", "status", "type", "class", "grade", "product", "recipe", "shift",
        "phase", "setting", "regime", "condition",
    }
)  # fmt: skip


def words(name: str) -> set[str]:
    """``operating_mode``, ``operatingMode`` and ``Operating Mode`` all give {operating, mode}."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return {w for w in re.split(r"[^0-9a-z]+", spaced.lower()) if w}


def guess_role(name: str, dtype: pa.DataType) -> ColumnRole:
    """The role a column's name and type suggest (no data seen)."""
    return _named(name, dtype)[0]


def _named(name: str, dtype: pa.DataType) -> tuple[ColumnRole, str]:
    for pattern, role in _ROLE_HINTS:
        if pattern.search(name):
            if role is ColumnRole.TIME and not is_temporal(dtype):
                continue
            return role, f"its name suggests a {role.value} column"
    if pa.types.is_timestamp(dtype):
        return ColumnRole.TIME, "a timestamp column"
    return ColumnRole.FEATURE, ""


@dataclass
class Evidence:
    """One column's profile over every file inferred from."""

    name: str
    dtype: pa.DataType
    rows: int = 0
    nulls: float = 0.0
    worst_null_fraction: float = 0.0  # of any one file: a draft must fit each file
    non_finite: int = 0
    count: int = 0
    low: float | None = None
    high: float | None = None
    categories: dict[str, int] | None = field(default_factory=dict)
    # Each file's distinct values (None: too many, or not a kind of column that has them).
    per_file: list[frozenset[str] | None] = field(default_factory=list)

    def add(self, profile: ColumnProfile, rows: int) -> None:
        self.rows += rows
        self.nulls += profile.null_fraction * rows
        self.worst_null_fraction = max(self.worst_null_fraction, profile.null_fraction)
        self.non_finite += profile.non_finite
        stats = profile.numeric
        values: frozenset[str] | None = None
        if stats is not None and stats.count:
            self.count += stats.count
            if stats.min is not None and stats.max is not None:
                self.low = stats.min if self.low is None else min(self.low, stats.min)
                self.high = stats.max if self.high is None else max(self.high, stats.max)
                if pa.types.is_integer(self.dtype) and stats.min == stats.max:
                    values = frozenset({str(int(stats.min))})
        if profile.categories is not None and not profile.suppressed_categories:
            values = frozenset(profile.categories)
            if self.categories is not None:
                for key, count in profile.categories.items():
                    self.categories[key] = self.categories.get(key, 0) + count
        else:
            self.categories = None
        self.per_file.append(values)

    @property
    def null_fraction(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    def constant_per_file(self) -> bool:
        return all(v is not None and len(v) == 1 for v in self.per_file) and not self.nulls

    def distinct(self) -> list[str]:
        return sorted({v for values in self.per_file if values for v in values})

    def disjoint_across_files(self) -> bool:
        """Several files, each with values, and no value in two of them."""
        if len(self.per_file) < 2 or any(not v for v in self.per_file):
            return False
        sets = [v for v in self.per_file if v is not None]
        return sum(len(v) for v in sets) == len(set().union(*sets))


@dataclass(frozen=True)
class Guess:
    role: ColumnRole
    why: str  # for the draft's comment; may name values only of columns that are not pii
    allowed_values: bool = True  # whether the values seen may become allowed_values


def guess(evidence: Evidence) -> Guess:
    """The role of a column from its name, type and spread over the files, and why."""
    role, why = _named(evidence.name, evidence.dtype)
    if role is not ColumnRole.FEATURE:
        return Guess(role, why, allowed_values=role is ColumnRole.LABEL)
    keyish = pa.types.is_string(evidence.dtype) or pa.types.is_large_string(evidence.dtype)
    keyish = keyish or pa.types.is_integer(evidence.dtype)
    named = words(evidence.name)
    files = len(evidence.per_file)
    spread = _spread(evidence) if keyish else ""
    if keyish and named & IDENTITY_WORDS:
        word = sorted(named & IDENTITY_WORDS)[0]
        why = f"its name says it identifies a {word}{spread}"
        return Guess(ColumnRole.ID, why + _series_hint(evidence), False)
    if not keyish or files < 2:
        return Guess(ColumnRole.FEATURE, "")
    per_file = evidence.constant_per_file() or evidence.disjoint_across_files()
    if named & ATTRIBUTE_WORDS and per_file:
        word = sorted(named & ATTRIBUTE_WORDS)[0]
        return Guess(
            ColumnRole.FEATURE,
            f"its name says a {word}, a property of the process, not an identity{spread}",
        )
    if evidence.constant_per_file() and len(evidence.distinct()) == files:
        return Guess(ColumnRole.ID, f"one value per file{spread}: it tells the files apart", False)
    if evidence.disjoint_across_files():
        why = f"a key of each file's series{spread}"
        return Guess(ColumnRole.ID, why + _series_hint(evidence), False)
    return Guess(ColumnRole.FEATURE, "")


def _series_hint(evidence: Evidence) -> str:
    """For an id with several values in a file: what an experiment can do with it."""
    if any(values is not None and len(values) > 1 for values in evidence.per_file):
        return "; an experiment may name it as its series (windows never span two)"
    return ""


def _spread(evidence: Evidence) -> str:
    """How the column's values spread over the files, e.g. ``constant per file, differs
    across files (plant-1..plant-3)``."""
    files = len(evidence.per_file)
    if files < 2 or any(v is None for v in evidence.per_file):
        return ""
    values = evidence.distinct()
    shown = values[0] if len(values) == 1 else f"{values[0]}..{values[-1]}"
    if evidence.constant_per_file():
        how = "differs across files" if len(values) > 1 else "the same in every file"
        return f": constant per file, {how} ({shown})"
    if evidence.disjoint_across_files():
        return f": {len(values)} values, none in two files"
    return ""
