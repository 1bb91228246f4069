"""Predict on a data file in one streaming pass: validate each batch against the model's
contract with the contract's own validator, encode it with the model's feature plan, run the
network, and write the rows' ids, time and prediction.

Memory is bounded by one batch (and, for a temporal model, each series' last window); the
output is written to a temporary file beside the target and renamed only when the whole
file was read and passed validation, so a refused or interrupted prediction leaves nothing
half written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fedpark.contracts import Contract, validate_file
from fedpark.contracts.dialect import CsvOptions
from fedpark.contracts.errors import DataError
from fedpark.contracts.model import ColumnRole, TableRules
from fedpark.contracts.reader import CsvValueError, open_source
from fedpark.contracts.report import ValidationReport
from fedpark.experiments.features import FeaturePlan, encode_inputs
from fedpark.experiments.serving.folder import ModelFolder
from fedpark.experiments.serving.network import forward, load_network
from fedpark.experiments.serving.outputs import OutputTable, open_writer
from fedpark.experiments.serving.summary import Summary
from fedpark.experiments.serving.windows import OutOfOrderError, SeriesWindows

# A model trained with each factory's own statistics, run without the running plant's.
NEEDS_REFERENCE = (
    "this model standardizes each plant's readings with that plant's own statistics "
    "(it was trained with normalization 'factory'): give --reference with a file of this "
    "plant's history (the file it trained on, or a stretch of ordinary operation)"
)

# Values per batch read: a temporal model's windows multiply a batch by its window length.
VALUES_PER_BATCH = 1 << 22


class PredictionError(Exception):
    """Prediction stopped: FedPark's words in the message; ``report`` when the data broke
    the contract (the validator's report)."""

    def __init__(self, message: str, report: ValidationReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class PredictOptions:
    skip_invalid: bool = False  # skip rows that break a per-row rule, instead of refusing
    normal: str | None = None  # the class that raises no alarm (default: found by name)
    batch_rows: int | None = None
    csv: CsvOptions | None = None  # a CSV dialect forced (--delimiter, --decimal, --encoding)


def prediction_contract(contract: Contract, with_label: bool) -> Contract:
    """The contract as prediction reads it: the label may be absent (it is what is predicted);
    the row-count bounds, which describe a training set, and ``unique``, which would keep a
    whole column in memory, do not apply: every other rule does, row by row."""
    columns = [
        c.model_copy(update={"rules": c.rules.model_copy(update={"unique": False})})
        for c in contract.columns
        if with_label or c.role is not ColumnRole.LABEL
    ]
    return contract.model_copy(update={"columns": columns, "rows": TableRules()})


def predict_file(
    model: ModelFolder,
    data: Path,
    output: Path,
    options: PredictOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> Summary:
    """Predict every row of ``data`` into ``output`` (``.parquet`` or ``.csv``).

    Raises :class:`PredictionError` (nothing written) when the file cannot be read, breaks
    the contract (unless ``skip_invalid`` and only per-row rules broke), or is out of order.
    """
    options = options or PredictOptions()
    if model.package.needs_reference:
        raise PredictionError(NEEDS_REFERENCE)
    contract = model.contract
    types = {c.name: c.arrow_type for c in contract.columns}
    try:
        names = set(open_source(data, csv_types=types, csv_options=options.csv).schema.names)
    except CsvValueError:  # a cell of another type: the validator's report names its row
        names = set(types)
    except DataError as exc:
        raise PredictionError(f"{data.name} {exc.failure.describe()}") from None
    label = model.package.features.label
    view = prediction_contract(contract, with_label=label in names)
    run = _Run(model, view, output, options, progress)
    try:
        with run.writer:
            result = validate_file(
                view, data, batch_rows=run.batch_rows, on_batch=run.batch, csv_options=options.csv
            )
            report = result.report
            run.refuse_unless_valid(report)
        run.writer.commit()
    except DataError as exc:
        raise PredictionError(f"{data.name} {exc.failure.describe()}") from None
    except OutOfOrderError as exc:
        raise PredictionError(
            f"{data.name}: row {exc.row} is earlier than the row before it in its series; "
            "a temporal model needs each series in time order (sort the file by time)"
        ) from None
    finally:
        run.writer.discard()
    run.summary.report = report
    return run.summary


class _Run:
    """One prediction pass: the validator calls :meth:`batch` with each checked batch."""

    def __init__(
        self,
        model: ModelFolder,
        contract: Contract,
        output: Path,
        options: PredictOptions,
        progress: Callable[[int], None] | None,
    ) -> None:
        package = model.package
        self.features = package.features
        self.plan = FeaturePlan.of(package.features)
        self.norm = package.features.normalization
        self.classification = package.task == "classification"
        self.network = load_network(model)
        self.window = package.window
        width = max(self.features.n_features, 1) * (self.window or 1)
        self.batch_rows = options.batch_rows or int(
            np.clip(VALUES_PER_BATCH // width, 256, 1 << 16)
        )
        self.windows = SeriesWindows(self.window, self.features.n_features) if self.window else None
        names = {c.name for c in contract.columns}
        self.has_label = self.features.label in names
        self.options = options
        self.progress = progress
        self.summary = Summary.start(package, options.normal)
        shown = [c.name for c in contract.columns if c.role in (ColumnRole.ID, ColumnRole.TIME)]
        self.table = OutputTable(package, shown, self.has_label)
        self.writer = open_writer(output, self.table.schema(contract))
        self.doomed = False  # a row broke the contract and is not to be skipped

    def batch(self, batch: pa.RecordBatch, offset: int, failed: np.ndarray) -> None:
        n = batch.num_rows
        bad = int(failed.sum())
        self.summary.rows += n
        self.summary.skipped += bad
        if bad and not self.options.skip_invalid:
            self.doomed = True
        if self.progress:
            self.progress(n)
        if self.doomed:
            return  # keep validating for the report; nothing more is predicted
        rows = np.flatnonzero(~failed)
        x = encode_inputs(batch, self.plan, self.norm)
        keys, times = self._keys(batch), self._times(batch)
        if self.windows is not None:
            inputs, rows = self.windows.take(x, rows, keys, times, offset)
        else:
            inputs = x[rows]
        out = forward(self.network, inputs, self.classification)
        self.summary.no_window += n - bad - len(rows)
        chosen = out.argmax(axis=1) if self.classification else None
        self.writer.write(self.table.batch(batch, offset, rows, out, chosen))
        self.summary.add(batch, offset, rows, out, chosen, keys, times)

    def _keys(self, batch: pa.RecordBatch) -> np.ndarray | None:
        series = self.features.series
        if series is None:
            return None
        values = pc.cast(batch[series], pa.string()).fill_null("")
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)

    def _times(self, batch: pa.RecordBatch) -> np.ndarray | None:
        time = self.features.time
        if time is None:
            return None
        return np.asarray(batch[time].to_numpy(zero_copy_only=False))

    def refuse_unless_valid(self, report: ValidationReport) -> None:
        if report.passed:
            return
        schema = [d for d in report.schema_differences if d.is_error]
        row_rules = {v.rule for v in report.violations}
        skippable = not schema and row_rules <= _ROW_RULES
        if self.options.skip_invalid and skippable:
            return
        counts = ", ".join(f"{rule}={n}" for rule, n in sorted(report.rule_counts().items()))
        hint = " (--skip-invalid skips the rows that break it)" if skippable else ""
        raise PredictionError(f"the data breaks the model's contract: {counts}{hint}", report)


# Rules a single row breaks on its own: those rows can be skipped. ``unique`` and the
# row-count bounds concern the file as a whole.
_ROW_RULES = {"not_null", "min", "max", "allowed_values", "regex", "finite", "monotonic"}
