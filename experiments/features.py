"""From a contract and local data to model inputs; ``id`` and ``pii`` columns never get in.

Features are the contract's ``feature`` columns: numbers and flags are standardized with
statistics pooled from the factories' DataProfiles (combined by the hub; no rows move), and
strings with ``allowed_values`` are one-hot encoded. The ``label`` column is the target; a
``time`` column only orders rows for windows. A ``series`` column, an ``id`` column the run
names (an engine, a batch, a production run), only keeps each series' rows together so that no
window spans two of them; its values never reach the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fedpark.contracts import Contract
from fedpark.contracts.model import Column, ColumnRole
from fedpark.contracts.report import DataProfile
from fedpark.contracts.types import is_numeric
from fedpark.experiments.protocol.package import CategoricalFeature, FeatureSpec, Normalization
from fedpark.experiments.protocol.plan import NormalizationScope
from fedpark.experiments.protocol.spec import is_scalar_number, pooled_normalization


@dataclass(frozen=True)
class FeaturePlan:
    """Which columns become which inputs, in a fixed order every factory shares."""

    numeric: tuple[str, ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]
    label: str
    classes: tuple[Any, ...] | None
    time: str | None
    series: str | None = None

    @property
    def n_features(self) -> int:
        return len(self.numeric) + sum(len(values) for _, values in self.categorical)

    @property
    def columns(self) -> list[str]:
        """Every column the model pipeline reads (features, label, time)."""
        names = [*self.numeric, *(name for name, _ in self.categorical), self.label]
        return names + [c for c in (self.time, self.series) if c]

    def described(self, norm: Normalization, label_unit: str | None = None) -> FeatureSpec:
        """The plan as a model package states it (see :mod:`..protocol.package`)."""
        return FeatureSpec(
            numeric=list(self.numeric),
            categorical=[CategoricalFeature(column=c, values=list(v)) for c, v in self.categorical],
            normalization=Normalization(
                mean={c: norm.mean[c] for c in self.numeric},
                std={c: norm.std[c] for c in self.numeric},
            ),
            label=self.label,
            label_unit=label_unit,
            classes=list(self.classes) if self.classes is not None else None,
            time=self.time,
            series=self.series,
        )

    @classmethod
    def of(cls, spec: FeatureSpec) -> FeaturePlan:
        """The plan a model package describes."""
        return cls(
            numeric=tuple(spec.numeric),
            categorical=tuple((c.column, tuple(c.values)) for c in spec.categorical),
            label=spec.label,
            classes=tuple(spec.classes) if spec.classes is not None else None,
            time=spec.time,
            series=spec.series,
        )


def normalization_for(
    scope: NormalizationScope, pooled: Normalization, own: DataProfile, plan: FeaturePlan
) -> Normalization:
    """The statistics a factory standardizes its readings with: the run's pooled ones, or
    (``factory``) its own profile's, computed the way the hub pools profiles (here: one)."""
    if scope == "pooled":
        return pooled
    return pooled_normalization([own], plan.numeric)


def plan_from_contract(contract: Contract, task: str, series: str | None = None) -> FeaturePlan:
    """Build the plan; raises ValueError when the contract cannot feed this task."""
    if series is not None:
        roles = {c.name: c.role for c in contract.columns}
        if roles.get(series) is not ColumnRole.ID:
            raise ValueError(f"series must name an id column of the contract, not {series!r}")
    numeric, categorical, skipped = [], [], []
    for column in contract.columns:
        if column.role is not ColumnRole.FEATURE:
            continue  # id, pii, label and time columns are never features
        if is_scalar_number(column):
            numeric.append(column.name)
        elif column.rules.allowed_values and pa.types.is_string(column.arrow_type):
            categorical.append((column.name, tuple(str(v) for v in column.rules.allowed_values)))
        else:
            skipped.append(column.name)
    labels = [c for c in contract.columns if c.role is ColumnRole.LABEL]
    if len(labels) != 1:
        raise ValueError(f"the contract needs exactly one label column, it has {len(labels)}")
    label = labels[0]
    classes = _classes(label) if task == "classification" else None
    if task == "regression" and not is_numeric(label.arrow_type):
        raise ValueError(f"regression needs a numeric label; {label.name} is {label.type}")
    if not numeric and not categorical:
        raise ValueError(f"no usable feature columns (skipped: {', '.join(skipped) or 'none'})")
    times = [c.name for c in contract.columns if c.role is ColumnRole.TIME]
    return FeaturePlan(
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        label=label.name,
        classes=classes,
        time=times[0] if times else None,
        series=series,
    )


def _classes(label: Column) -> tuple[Any, ...]:
    rules = label.rules
    if rules.allowed_values:  # numbers in numeric order (fault 2 before fault 10)
        values = rules.allowed_values
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        return tuple(sorted(values) if numbers else sorted(values, key=str))
    if pa.types.is_integer(label.arrow_type) and rules.min is not None and rules.max is not None:
        return tuple(range(int(rules.min), int(rules.max) + 1))
    raise ValueError(
        f"classification needs the label's classes: give {label.name} allowed_values "
        "(or integer min and max)"
    )


def encode(
    table: pa.Table, plan: FeaturePlan, norm: Normalization
) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs ``X`` (float32, rows by n_features) and targets ``y``.

    Rows without a label are dropped; missing or non-finite feature values become 0 (the
    pooled mean after standardization). Rows are sorted by series, then time.
    """
    x, y, _ = encode_series(table, plan, norm)
    return x, y


def encode_series(
    table: pa.Table, plan: FeaturePlan, norm: Normalization
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``encode``, plus each row's series number (all 0 without a series column)."""
    order = [(c, "ascending") for c in (plan.series, plan.time) if c]
    if order:
        table = table.sort_by(order)
    labels = table[plan.label]
    keep = pc.is_valid(labels)
    if pc.sum(pc.invert(keep)).as_py():
        table = table.filter(keep)
    x = encode_inputs(table, plan, norm)
    series = np.zeros(len(x), np.int64)
    if plan.series:  # sorted by series: a new number wherever the value changes
        values = table[plan.series].to_numpy(zero_copy_only=False)
        series[1:] = np.cumsum(values[1:] != values[:-1])
    y_raw = table[plan.label].to_numpy(zero_copy_only=False)
    if plan.classes is None:
        return x, y_raw.astype(np.float32), series
    index = {str(c): i for i, c in enumerate(plan.classes)}
    y = np.fromiter((index.get(str(v), -1) for v in y_raw), dtype=np.int64, count=len(y_raw))
    known = y >= 0  # a label outside the contract's classes: the validator should stop it
    return x[known], y[known], series[known]


def encode_inputs(
    table: pa.Table | pa.RecordBatch, plan: FeaturePlan, norm: Normalization
) -> np.ndarray:
    """Model inputs of every row, in the rows' order (float32, rows by n_features): numbers
    standardized (missing or non-finite: 0, the pooled mean), categories one-hot (a value
    outside the allowed ones: all zero)."""
    n, k = table.num_rows, len(plan.numeric)
    x = np.empty((n, plan.n_features), np.float32)  # filled in place: no concatenation
    for j, name in enumerate(plan.numeric):  # standardized in float64, stored as float32
        values = pc.cast(table[name], pa.float64()).to_numpy(zero_copy_only=False)
        x[:, j] = (values - norm.mean[name]) / norm.std[name]
    if k:
        block = x[:, :k]
        np.copyto(block, 0.0, where=~np.isfinite(block))
    start = k
    for name, allowed in plan.categorical:
        found = pc.index_in(pc.cast(table[name], pa.string()), value_set=pa.array(allowed))
        index = found.fill_null(len(allowed)).to_numpy(zero_copy_only=False)
        x[:, start : start + len(allowed)] = np.eye(len(allowed) + 1, len(allowed))[index]
        start += len(allowed)
    return x


def recent_split(
    x: np.ndarray, y: np.ndarray, eval_fraction: float, series: np.ndarray | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(train, eval)``: a factory trains on its older rows and evaluates on the most recent
    ``eval_fraction`` (rows are in time order), so evaluation never looks back in time.

    With ``series`` (non-decreasing, as ``model_arrays`` returns it) the most recent rows of
    *every* series are held out: a plant history ends with whole production runs, and holding
    out the last runs would evaluate on conditions the factory never trained on.
    """
    if series is None or not len(series):
        cut = int(len(x) * (1 - eval_fraction))
        return (x[:cut], y[:cut]), (x[cut:], y[cut:])
    _, first, counts = np.unique(series, return_index=True, return_counts=True)
    position = np.arange(len(series)) - np.repeat(first, counts)
    held = position >= np.repeat((counts * (1 - eval_fraction)).astype(np.int64), counts)
    return (x[~held], y[~held]), (x[held], y[held])


def model_arrays(
    table: pa.Table, plan: FeaturePlan, norm: Normalization, window: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, targets and series numbers of a table, windowed when ``window`` is given:
    the one path from a factory's rows to a model's inputs (the ClientApp and the learning
    baselines both take it)."""
    x, y, series = encode_series(table, plan, norm)
    if window is None:
        return x, y, series
    starts = _window_starts(len(x), window, 1, series)
    return _windowed(x, window, starts), y[starts + window - 1], series[starts + window - 1]


def windows(
    x: np.ndarray,
    y: np.ndarray,
    window: int,
    stride: int = 1,
    series: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows over time: ``(n, window, features)`` labelled by their last row.

    With ``series`` (from ``encode_series``) no window spans two series.
    """
    starts = _window_starts(len(x), window, stride, series)
    return _windowed(x, window, starts), y[starts + window - 1]


def _window_starts(n: int, window: int, stride: int, series: np.ndarray | None) -> np.ndarray:
    starts = np.arange(0, max(n - window + 1, 0), stride)
    if series is not None and len(starts):
        starts = starts[series[starts] == series[starts + window - 1]]
    return starts


def _windowed(x: np.ndarray, window: int, starts: np.ndarray) -> np.ndarray:
    view = (
        np.lib.stride_tricks.sliding_window_view(x, window, axis=0)  # (n, f, window)
        if len(x) >= window
        else np.zeros((0, x.shape[1], window), np.float32)
    )
    return np.ascontiguousarray(view[starts].transpose(0, 2, 1))
