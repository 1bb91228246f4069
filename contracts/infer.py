"""Draft a contract from a data file: types from the file, rules suggested from statistics.

The draft is a starting point for a person: ranges get a margin, rare categories are not turned
into allowed values, and column roles are guessed from names (check ``id`` and ``pii``!).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pyarrow as pa

from fedpark.contracts.model import Column, ColumnRole, Contract
from fedpark.contracts.reader import open_source
from fedpark.contracts.report import ColumnProfile
from fedpark.contracts.types import TypeSpecError, format_type, is_temporal, value_type
from fedpark.contracts.validate import validate_source

MAX_ALLOWED_VALUES = 20
RANGE_MARGIN = 0.1

_ROLE_HINTS: list[tuple[re.Pattern[str], ColumnRole]] = [
    (re.compile(r"(^|_)(id|uuid|serial|serial_no|batch_id|lot)$", re.I), ColumnRole.ID),
    (re.compile(r"(name|email|operator|employee|phone|address|badge)", re.I), ColumnRole.PII),
    (re.compile(r"^(label|target|class|fault|fault_type|defect|rul|y)$", re.I), ColumnRole.LABEL),
    (re.compile(r"^(time|timestamp|ts|datetime|date|event_time)$", re.I), ColumnRole.TIME),
]


def guess_role(name: str, dtype: pa.DataType) -> ColumnRole:
    for pattern, role in _ROLE_HINTS:
        if pattern.search(name):
            if role is ColumnRole.TIME and not is_temporal(dtype):
                continue
            return role
    return ColumnRole.TIME if pa.types.is_timestamp(dtype) else ColumnRole.FEATURE


def _nice(value: float, up: bool) -> float | int:
    """Round a bound outwards to 3 significant digits (integers stay integers)."""
    if value == 0 or not math.isfinite(value):
        return 0
    digits = 3 - math.floor(math.log10(abs(value))) - 1
    scale = 10.0**digits
    rounded = (math.ceil if up else math.floor)(value * scale) / scale
    return int(rounded) if float(rounded).is_integer() else rounded


def _suggest_rules(column: Column, profile: ColumnProfile, rows: int) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    stats = profile.numeric
    dtype = value_type(column.arrow_type)
    if stats and stats.count and stats.min is not None and stats.max is not None:
        margin = (stats.max - stats.min) * RANGE_MARGIN
        low, high = _nice(stats.min - margin, up=False), _nice(stats.max + margin, up=True)
        if stats.min >= 0 and low < 0:
            low = 0  # never suggest negatives for a quantity that was never negative
        if pa.types.is_integer(dtype):
            low, high = math.floor(low), math.ceil(high)
        rules["min"], rules["max"] = low, high
    if pa.types.is_floating(dtype) and profile.non_finite == 0:
        rules["finite"] = True
    if profile.null_fraction > 0:
        rules["max_null_fraction"] = round(min(1.0, profile.null_fraction * 1.5 + 0.01), 4)
    categories = profile.categories
    if (
        categories
        and profile.suppressed_categories == 0
        and len(categories) <= MAX_ALLOWED_VALUES
        and (pa.types.is_string(dtype) or pa.types.is_large_string(dtype))
    ):
        rules["allowed_values"] = sorted(categories)
    if column.role is ColumnRole.TIME:
        rules.pop("min", None)
        rules.pop("max", None)
    return rules


def infer_contract(
    path: Path,
    *,
    contract_id: str,
    owner: str,
    title: str | None = None,
    version: str = "0.1.0",
) -> Contract:
    """Read ``path`` once (streaming) and draft a contract for it."""
    source = open_source(path)
    columns = []
    for field in source.schema:
        try:
            type_text = format_type(field.type)
        except TypeSpecError as exc:
            raise TypeSpecError(f"column {field.name!r}: {exc}") from None
        columns.append(Column(name=field.name, type=type_text, role=ColumnRole.FEATURE))
    draft = Contract(
        id=contract_id, version=version, title=title or path.stem, owner=owner, columns=columns
    )
    result = validate_source(draft, source, min_category_count=1)
    final = []
    for column in draft.columns:
        profile = result.profile.column(column.name)
        role = guess_role(column.name, column.arrow_type)
        provisional = column.model_copy(update={"role": role})
        rules = _suggest_rules(provisional, profile, result.profile.rows)
        if role in (ColumnRole.ID, ColumnRole.PII):
            rules = {k: v for k, v in rules.items() if k == "max_null_fraction"}
        final.append(
            {
                "name": column.name,
                "type": column.type,
                "nullable": profile.null_fraction > 0,
                "role": role.value,
                "description": "",
                "rules": rules,
            }
        )
    data = draft.model_dump(mode="json")
    data["columns"] = final
    data["description"] = (
        f"Drafted by `fedpark contract infer` from {path.name} ({result.profile.rows} rows). "
        "Review the roles (id and pii columns never reach a model), units and rules."
    )
    return Contract.model_validate(data)
