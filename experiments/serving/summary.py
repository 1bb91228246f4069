"""What a prediction run found: rows per predicted class per series, the alarms (the first
row of each stretch predicted as something other than the normal class), and, when the
file holds the label, how well the model did on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fedpark.contracts.report import ValidationReport
from fedpark.experiments.protocol.package import ModelPackage

# Names of a class that means "nothing is wrong" (compared lowercase); an integer label's 0
# (fault code 0) too. ``--normal`` names it when neither fits.
NORMAL_NAMES = {"normal", "ok", "good", "healthy", "nominal", "none", "no_fault", "0"}
ALARMS_KEPT = 1000


class UnknownClassError(ValueError):
    """``--normal`` names no class of the model (the message lists them: the contract's)."""


@dataclass(frozen=True)
class Alarm:
    series: str
    row: int
    time: str | None
    predicted: str


@dataclass
class Summary:
    classes: list[str] | None
    label: str
    normal: int | None
    rows: int = 0
    skipped: int = 0  # broke a per-row rule (with --skip-invalid)
    no_window: int = 0  # a temporal model's first rows of each series
    counts: dict[str, np.ndarray] = field(default_factory=dict)  # series -> per class
    alarms: list[Alarm] = field(default_factory=list)
    alarm_count: int = 0
    last: dict[str, int] = field(default_factory=dict)  # series -> last predicted class
    # Against the file's labels, in bounded memory: a confusion matrix (actual x predicted),
    # or the count, squared and absolute errors of a regression.
    confusion: np.ndarray | None = None
    errors: np.ndarray = field(default_factory=lambda: np.zeros(3))
    report: ValidationReport | None = None

    @classmethod
    def start(cls, package: ModelPackage, normal: str | None) -> Summary:
        classes = package.features.classes
        names = [str(c) for c in classes] if package.task == "classification" and classes else None
        return cls(classes=names, label=package.features.label, normal=_normal(names, normal))

    @property
    def predicted(self) -> int:
        return self.rows - self.skipped - self.no_window

    def add(
        self,
        batch: pa.RecordBatch,
        offset: int,
        rows: np.ndarray,
        out: np.ndarray,
        chosen: np.ndarray | None,
        keys: np.ndarray | None,
        times: np.ndarray | None,
    ) -> None:
        if not len(rows):
            return
        series = keys[rows] if keys is not None else np.full(len(rows), "", dtype=object)
        if self.label in batch.schema.names:
            self._compare(batch[self.label], rows, out if chosen is None else chosen)
        if self.classes is None or chosen is None:
            return
        for key in dict.fromkeys(series.tolist()):
            mine = series == key
            counts = np.bincount(chosen[mine], minlength=len(self.classes))
            self.counts[key] = self.counts.get(key, 0) + counts
            if self.normal is not None:
                self._alarms(str(key), rows[mine] + offset, chosen[mine], times, rows[mine])

    def _alarms(
        self,
        key: str,
        rows: np.ndarray,
        chosen: np.ndarray,
        times: np.ndarray | None,
        local: np.ndarray,
    ) -> None:
        assert self.classes is not None and self.normal is not None
        before = np.concatenate([[self.last.get(key, self.normal)], chosen[:-1]])
        starts = np.flatnonzero((chosen != self.normal) & (before == self.normal))
        self.last[key] = int(chosen[-1])
        self.alarm_count += len(starts)
        for i in starts[: max(ALARMS_KEPT - len(self.alarms), 0)]:
            when = str(times[local[i]]) if times is not None else None
            self.alarms.append(Alarm(key, int(rows[i]), when, self.classes[chosen[i]]))

    def _compare(self, labels: pa.Array, rows: np.ndarray, out: np.ndarray) -> None:
        """``out``: the predicted values of a regression, the chosen classes otherwise."""
        taken = labels.take(pa.array(rows))
        if self.classes is None:
            actual = pc.cast(taken, pa.float64()).to_numpy(zero_copy_only=False)
            known = ~np.isnan(actual)
            error = out[known].astype(np.float64) - actual[known]
            self.errors += [len(error), float(np.sum(error**2)), float(np.sum(np.abs(error)))]
            return
        names = pa.array(self.classes)
        found = pc.index_in(pc.cast(taken, pa.string()), value_set=names)
        codes = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        known = codes >= 0
        if self.confusion is None:
            self.confusion = np.zeros((len(self.classes), len(self.classes)), np.int64)
        np.add.at(self.confusion, (codes[known], out[known]), 1)

    def metrics(self) -> dict[str, Any] | None:
        """The model's metrics on the rows whose label the file holds (None: no labels)."""
        if self.classes is None:
            n, squared, absolute = self.errors
            if not n:
                return None
            return {"rows": int(n), "rmse": float(np.sqrt(squared / n)), "mae": absolute / n}
        if self.confusion is None or not self.confusion.sum():
            return None
        matrix = self.confusion
        tp = np.diag(matrix)
        fp, fn = matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp
        present = (tp + fp + fn) > 0  # classes in the labels or the predictions, as in training
        f1 = 2 * tp[present] / (2 * tp[present] + fp[present] + fn[present])
        return {
            "rows": int(matrix.sum()),
            "accuracy": float(tp.sum() / matrix.sum()),
            "macro_f1": float(np.mean(f1)),
        }


def _normal(classes: list[str] | None, chosen: str | None) -> int | None:
    if classes is None:
        return None
    if chosen is not None:
        if chosen not in classes:
            raise UnknownClassError(
                f"--normal {chosen} is not one of the classes: {', '.join(classes)}"
            )
        return classes.index(chosen)
    for i, name in enumerate(classes):
        if name.lower() in NORMAL_NAMES:
            return i
    return None
