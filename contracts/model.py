"""The dataset contract: columns with Arrow types and value rules, and a usage policy.

Every check here names the exact field it refuses (pydantic's error location), so the hub can
answer a malformed contract with a 422 that says ``columns.3.rules.max`` and why.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from enum import StrEnum
from typing import Annotated, Self

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fedpark.contracts.names import SEMVER, SLUG, Slug
from fedpark.contracts.types import (
    TypeSpecError,
    format_type,
    is_numeric,
    is_orderable,
    is_stringy,
    is_temporal,
    normalize_type,
    parse_type,
    value_type,
)

MAX_COLUMNS = 2000
MAX_ALLOWED_VALUES = 10_000
# In all the contract's columns: a contract stays a document the hub parses cheaply (its
# bodies are held under a million JSON values before parsing, hub/api/limits.py).
MAX_TOTAL_ALLOWED_VALUES = 200_000

Scalar = bool | int | float | str
# Text kept exactly as written: a column's name is the data's identity, and values padded
# with spaces (CHAR columns from any database: "doing ") are values (the model strips the
# rest of a contract's text).
ExactStr = Annotated[str, StringConstraints(strip_whitespace=False)]
ExactScalar = bool | int | float | ExactStr


class Domain(StrEnum):
    SMART_FACTORY = "smart-factory"
    MOBILITY = "mobility"
    SEMICONDUCTOR = "semiconductor"
    HEALTHCARE = "healthcare"
    PROCESS_INDUSTRY = "process-industry"
    ENERGY = "energy"
    OTHER = "other"


class ColumnRole(StrEnum):
    """How a column may be used. ``id`` and ``pii`` columns never reach a model."""

    FEATURE = "feature"
    LABEL = "label"
    TIME = "time"
    ID = "id"
    PII = "pii"


MODEL_ROLES = frozenset({ColumnRole.FEATURE, ColumnRole.LABEL, ColumnRole.TIME})


class Monotonic(StrEnum):
    INCREASING = "increasing"
    STRICTLY_INCREASING = "strictly_increasing"
    DECREASING = "decreasing"
    STRICTLY_DECREASING = "strictly_decreasing"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ColumnRules(_Model):
    """Value rules of one column; every rule is optional."""

    min: Scalar | None = Field(default=None, description="Smallest allowed value (inclusive)")
    max: Scalar | None = Field(default=None, description="Largest allowed value (inclusive)")
    allowed_values: list[ExactScalar] | None = Field(default=None, max_length=MAX_ALLOWED_VALUES)
    regex: str | None = Field(default=None, max_length=1000, description="Must match fully")
    max_null_fraction: float | None = Field(default=None, ge=0, le=1)
    finite: bool = Field(default=False, description="No NaN or ±inf")
    unique: bool = False
    monotonic: Monotonic | None = None

    @field_validator("max")
    @classmethod
    def _max_not_below_min(cls, value: Scalar | None, info: ValidationInfo) -> Scalar | None:
        low = info.data.get("min")
        if value is not None and low is not None:
            try:
                if value < low:  # type: ignore[operator,unused-ignore]
                    raise ValueError(f"max ({value!r}) is smaller than min ({low!r})")
            except TypeError:
                raise ValueError(f"min ({low!r}) and max ({value!r}) are not comparable") from None
        return value

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            re.compile(value)
        except re.error as exc:  # FedPark's words and the position, not the parser's text
            where = f" at character {exc.pos + 1}" if exc.pos is not None else ""
            raise ValueError(
                f"invalid regular expression{where}: check its brackets, parentheses and escapes"
            ) from None
        try:  # validators run the pattern with Arrow's RE2, which lacks some Python features
            pc.match_substring_regex(pa.array([""]), f"^(?:{value})$")
        except pa.ArrowInvalid:
            raise ValueError(
                "invalid regular expression for RE2, which checks the data: no look-arounds "
                "(?=, ?!, ?<=) or back-references (\\1)"
            ) from None
        return value

    def describe(self) -> list[str]:
        """The rules in words, one phrase each (``fedpark contract show`` and the console's
        contract page show the same)."""
        said = [f"≥ {self.min}"] if self.min is not None else []
        if self.max is not None:
            said.append(f"≤ {self.max}")
        if self.allowed_values:
            values = ", ".join(str(v) for v in self.allowed_values)
            said.append(f"one of {values if len(values) <= 120 else values[:117] + '…'}")
        if self.regex:
            said.append(f"matches {self.regex}")
        if self.max_null_fraction is not None:
            said.append(f"≤ {round(self.max_null_fraction * 100, 1)} % null")
        said += [name for name, on in (("finite", self.finite), ("unique", self.unique)) if on]
        if self.monotonic:
            said.append(self.monotonic.value.replace("_", " "))
        return said

    @field_validator("allowed_values")
    @classmethod
    def _distinct(cls, value: list[Scalar] | None) -> list[Scalar] | None:
        if value is not None and len({(type(v), v) for v in value}) != len(value):
            raise ValueError("allowed_values lists a value twice")
        return value

    def is_empty(self) -> bool:
        return self == ColumnRules()


class Column(_Model):
    name: ExactStr = Field(min_length=1, max_length=200)
    type: str = Field(description="Arrow type, e.g. float32, timestamp[ms, tz=UTC]")
    nullable: bool = True
    unit: str | None = Field(default=None, max_length=50, description="e.g. degC, bar, rpm")
    description: str = Field(default="", max_length=2000)
    role: ColumnRole = ColumnRole.FEATURE
    rules: ColumnRules = ColumnRules()

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        try:
            return normalize_type(value)
        except TypeSpecError as exc:
            raise ValueError(str(exc)) from None

    @property
    def arrow_type(self) -> pa.DataType:
        return parse_type(self.type)

    @model_validator(mode="after")
    def _rules_fit_the_type(self) -> Self:
        dtype = value_type(self.arrow_type)
        rules = self.rules
        checks: list[tuple[bool, str, str]] = [
            (rules.min is not None or rules.max is not None, "min/max", "numbers or times"),
            (rules.monotonic is not None, "monotonic", "numbers or times"),
            (rules.regex is not None, "regex", "strings"),
            (rules.finite, "finite", "floating-point numbers"),
        ]
        fits = {
            "min/max": is_orderable(dtype),
            "monotonic": is_orderable(dtype) and dtype == self.arrow_type,
            "regex": is_stringy(dtype),
            "finite": pa.types.is_floating(dtype),
        }
        for used, rule, family in checks:
            if used and not fits[rule]:
                raise ValueError(f"rules.{rule} applies to {family}, not to {self.type}")
        for bound in ("min", "max"):
            value = getattr(rules, bound)
            if value is not None:
                bound_scalar(value, dtype, f"rules.{bound}")
        bound_values(rules.allowed_values or [], dtype, "rules.allowed_values")
        return self


def bound_values(values: list[Scalar], dtype: pa.DataType, where: str) -> None:
    """Every listed value, as :func:`bound_scalar` takes one. Codes of one Python type on a
    column of their kind (strings, integers) are converted in one Arrow call: a contract may
    list 200 000 values, a body the hub must parse cheaply. When that call fails, the values
    are taken one by one, so that the error names the first bad one."""
    kinds = {type(value) for value in values}
    if (kinds == {str} and is_stringy(dtype)) or (kinds == {int} and pa.types.is_integer(dtype)):
        try:
            pa.array(values, type=dtype)
            return
        except (TypeError, ValueError, pa.ArrowException, OverflowError):
            pass  # named below
    for value in values:
        bound_scalar(value, dtype, where)


def bound_scalar(value: Scalar, dtype: pa.DataType, where: str) -> pa.Scalar:
    """A rule's literal as an Arrow scalar of the column's type (times as ISO strings)."""
    try:
        if is_temporal(dtype) and isinstance(value, str):
            return pa.scalar(value).cast(dtype)
        if isinstance(value, bool) and not pa.types.is_boolean(dtype):
            raise TypeError
        if is_numeric(dtype) and isinstance(value, str):
            raise TypeError
        if pa.types.is_decimal(dtype):  # exact: 110 in a decimal(5, 2) is 110.00
            return pa.scalar(decimal.Decimal(str(value)), type=dtype)
        if pa.types.is_floating(dtype) and isinstance(value, int):
            value = float(value)  # a whole bound ≥ 2^53 is a float bound, not an int cast
        if pa.types.is_integer(dtype) and isinstance(value, int):
            # Straight to the column's type: via int64 first, a uint64 bound past 2^63 overflows.
            return pa.scalar(value, type=dtype)
        return pa.scalar(value).cast(dtype)
    except (TypeError, UnicodeError, pa.ArrowException, OverflowError, decimal.InvalidOperation):
        # UnicodeError: a lone surrogate (JSON allows "\\ud800"), not UTF-8 Arrow can hold
        raise ValueError(f"{where}: {value!r} is not a valid {format_type(dtype)} value") from None


class TableRules(_Model):
    min_rows: int | None = Field(default=None, ge=0)
    max_rows: int | None = Field(default=None, ge=0)

    @field_validator("max_rows")
    @classmethod
    def _max_not_below_min(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min_rows")
        if value is not None and low is not None and value < low:
            raise ValueError(f"max_rows ({value}) is smaller than min_rows ({low})")
        return value


class UsagePolicy(_Model):
    """Who may do what with data under this contract and with the models trained on it."""

    purposes: list[Annotated[str, Field(pattern=SLUG, max_length=63)]] = Field(
        default_factory=lambda: ["federated-training"], min_length=1
    )
    experiment_orgs: list[Slug] = Field(
        default_factory=list, description="Organizations that may launch experiments"
    )
    model_download_orgs: list[Slug] = Field(
        default_factory=list, description="Organizations that may download the models"
    )
    min_factories: int = Field(
        default=2, ge=1, le=1000, description="k: distinct factories in any aggregate"
    )
    expires: dt.date | None = None


class Contract(_Model):
    """A versioned dataset contract.

    Examples
    --------
    >>> Contract.model_validate({"id": "press-sensors", "version": "1.0.0",
    ...     "title": "Press sensors", "owner": "acme",
    ...     "columns": [{"name": "force", "type": "float32", "unit": "kN"}]}).columns[0].type
    'float32'
    """

    id: Slug
    version: str = Field(pattern=SEMVER, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20_000)
    domain: Domain = Domain.SMART_FACTORY
    owner: Slug = Field(description="The organization that owns the contract")
    columns: list[Column] = Field(min_length=1, max_length=MAX_COLUMNS)
    rows: TableRules = TableRules()
    policy: UsagePolicy = UsagePolicy()

    @field_validator("columns")
    @classmethod
    def _unique_names(cls, columns: list[Column]) -> list[Column]:
        seen: dict[str, int] = {}
        for index, column in enumerate(columns):
            if column.name in seen:
                raise ValueError(
                    f"duplicate column name {column.name!r} (columns {seen[column.name]} "
                    f"and {index})"
                )
            seen[column.name] = index
        return columns

    @field_validator("columns")
    @classmethod
    def _allowed_values_in_all(cls, columns: list[Column]) -> list[Column]:
        total = sum(len(c.rules.allowed_values or ()) for c in columns)
        if total > MAX_TOTAL_ALLOWED_VALUES:
            raise ValueError(
                f"the columns list {total} allowed values in all; a contract holds at most "
                f"{MAX_TOTAL_ALLOWED_VALUES}"
            )
        return columns

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def model_columns(self) -> list[Column]:
        """Columns that may reach a model (never ``id`` or ``pii``)."""
        return [c for c in self.columns if c.role in MODEL_ROLES]

    def semver(self) -> tuple[int, int, int, str]:
        return semver_key(self.version)


def semver_key(version: str) -> tuple[int, int, int, str]:
    """Sort key of a semver string; a pre-release sorts before its release."""
    core, _, pre = version.partition("-")
    major, minor, patch = (int(x) for x in core.split("."))
    return (major, minor, patch, pre or "~")  # "~" sorts after any pre-release tag
