"""The range a draft suggests for a numeric column: the data's, widened, and always a value
the column's type can hold (a bound a type rejects makes the whole draft invalid).

- integers: whole bounds, clamped to the type's limits (uint8 stops at 255);
- floats: clamped to the largest finite value; a bound of 2^53 or more is written as a float,
  never as an integer the type cannot hold exactly;
- decimals: rounded outward on the column's scale (12.35 in a decimal(5, 2), not 12.345); a
  bound past what the precision holds is left out, as it would check nothing.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, InvalidOperation
from typing import Any

import numpy as np
import pyarrow as pa

from fedpark.contracts.model import bound_scalar
from fedpark.contracts.roles import Evidence
from fedpark.contracts.types import value_type

RANGE_MARGIN = 0.1
EXACT_FLOAT = 2**53  # past it, not every whole number is a float
_WIDE = Context(prec=100)  # decimal256 holds 76 digits; Python's default context 28


def _limits(dtype: pa.DataType) -> tuple[float, float] | None:
    if pa.types.is_integer(dtype):
        info = np.iinfo(dtype.to_pandas_dtype())
        return int(info.min), int(info.max)  # exact: int64's limits are not floats
    if pa.types.is_floating(dtype):
        top = float(np.finfo(dtype.to_pandas_dtype()).max)
        return -top, top
    return None


def _nice(value: float, up: bool) -> float | int:
    """Round a bound outwards to 3 significant digits (integers stay integers). Decimal
    arithmetic: a float's own scaling overflows for the tiniest and largest values."""
    if value == 0 or not math.isfinite(value):
        return value  # ±inf: widened past every float, clamped to the type's limit below
    exact = Decimal(repr(value))
    step = Decimal(1).scaleb(exact.adjusted() - 2)
    rounded = exact.quantize(step, rounding=ROUND_CEILING if up else ROUND_FLOOR)
    if rounded == rounded.to_integral_value():
        return int(rounded)
    return float(rounded)


def _as_float(value: float | int) -> float | int:
    """A float column's bound: whole numbers only while every one is exactly a float."""
    if isinstance(value, int) and abs(value) >= EXACT_FLOAT:
        return float(value)
    return value


def _on_scale(value: float | int, dtype: pa.DataType, up: bool) -> float | int | None:
    """``value`` rounded outward to the decimal's scale, or None past its precision."""
    step = Decimal(1).scaleb(-dtype.scale)
    top = Decimal(10) ** (dtype.precision - dtype.scale) - step
    try:
        exact = Decimal(repr(value) if isinstance(value, float) else value)
        rounded = exact.quantize(step, rounding=ROUND_CEILING if up else ROUND_FLOOR, context=_WIDE)
    except InvalidOperation:  # more digits than a decimal context keeps: past any limit
        return None
    if abs(rounded) > top:
        return None
    bound: float | int = int(rounded) if rounded == rounded.to_integral_value() else float(rounded)
    try:  # a float of many digits may not come back as the same decimal
        bound_scalar(bound, dtype, "bound")
    except ValueError:
        return None
    return bound


def suggest_range(evidence: Evidence, notes: list[str]) -> dict[str, Any]:
    """min and max: the files' range widened by RANGE_MARGIN of its span (of the value, if
    it never varies), never below 0 for data that never is, within the type's limits."""
    low, high = evidence.low, evidence.high
    dtype = value_type(evidence.dtype)
    decimal = pa.types.is_decimal(dtype)
    limits = _limits(dtype)
    if low is None or high is None or (limits is None and not decimal):
        return {}
    margin = (high - low or abs(high) or 1.0) * RANGE_MARGIN
    lower, upper = _nice(low - margin, up=False), _nice(high + margin, up=True)
    note = f"range: seen {low:.4g}..{high:.4g}, widened by {RANGE_MARGIN:.0%} of the span"
    if low >= 0 > lower:
        lower = 0  # a quantity never negative in the data: a flow, a level, a count
        note += "; min 0: never negative in the data"
    notes.append(note)
    if decimal:
        found = {"min": _on_scale(lower, dtype, up=False), "max": _on_scale(upper, dtype, up=True)}
        return {k: v for k, v in found.items() if v is not None}
    assert limits is not None
    if pa.types.is_integer(dtype):
        lower, upper = math.floor(lower), math.ceil(upper)
    lower, upper = max(lower, limits[0]), min(upper, limits[1])
    if pa.types.is_integer(dtype):
        return {"min": int(lower), "max": int(upper)}
    return {"min": _as_float(lower), "max": _as_float(upper)}
