"""The prediction file: its columns, and a writer that only ever leaves a whole file.

Columns: ``row`` (the row's number in the input, from 0), the input's id and time columns
(never its ``pii`` columns), the label itself when the input has it, then
``predicted_<label>`` (the class name, or the value in the label's units) and, for a
classifier, ``probability_<class>`` per class. Rows without a prediction (skipped as
invalid, or without a full window yet) have nulls there.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fedpark.contracts import Contract
from fedpark.experiments.protocol.package import ModelPackage

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


class OutputTable:
    """Builds the output's record batches."""

    def __init__(self, package: ModelPackage, shown: list[str], with_label: bool) -> None:
        features = package.features
        self.shown = shown + ([features.label] if with_label else [])
        self.label = features.label
        self.classes = features.classes if package.task == "classification" else None

    def schema(self, contract: Contract) -> pa.Schema:
        types = {c.name: c.arrow_type for c in contract.columns}
        fields = [pa.field("row", pa.int64())]
        fields += [pa.field(name, types[name]) for name in self.shown]
        if self.classes is None:
            return pa.schema([*fields, pa.field(f"predicted_{self.label}", pa.float64())])
        fields.append(pa.field(f"predicted_{self.label}", types.get(self.label, pa.string())))
        fields += [pa.field(f"probability_{c}", pa.float32()) for c in self.classes]
        return pa.schema(fields)

    def batch(
        self,
        batch: pa.RecordBatch,
        offset: int,
        rows: np.ndarray,
        out: np.ndarray,
        chosen: np.ndarray | None,
    ) -> pa.RecordBatch:
        """The output rows of ``batch``: ``out`` (and the ``chosen`` class of a classifier)
        for its ``rows``, nulls elsewhere."""
        n = batch.num_rows
        columns: list[pa.Array] = [pa.array(np.arange(offset, offset + n, dtype=np.int64))]
        columns += [batch[name] for name in self.shown]
        missing = np.ones(n, bool)
        missing[rows] = False
        if self.classes is None:
            values = np.full(n, np.nan)
            values[rows] = out
            columns.append(pa.array(values, mask=missing))
        else:
            index = np.zeros(n, np.int64)
            if len(rows) and chosen is not None:
                index[rows] = chosen
            names = pa.array(self.classes)
            columns.append(names.take(pa.array(index, mask=missing)))
            probability = np.zeros((n, len(self.classes)), np.float32)
            probability[rows] = out
            columns += [pa.array(probability[:, i], mask=missing) for i in range(len(self.classes))]
        return columns_batch(columns)


def columns_batch(columns: list[pa.Array]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(columns, names=[str(i) for i in range(len(columns))])


class AtomicWriter:
    """Writes ``target`` through a temporary file in the same folder; :meth:`commit` renames
    it into place, :meth:`discard` removes it (a no-op once committed)."""

    def __init__(self, target: Path, schema: pa.Schema, fmt: str) -> None:
        self.target, self.schema = target, schema
        self.temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
        # Dictionary encoding only where values repeat (ids, class names): tried on every
        # probability column it quadruples the write time for nothing.
        repeated = [f.name for f in schema if pa.types.is_string(f.type)]
        self._writer: pq.ParquetWriter | pacsv.CSVWriter = (
            pq.ParquetWriter(self.temporary, schema, use_dictionary=repeated)
            if fmt == "parquet"
            else pacsv.CSVWriter(self.temporary, schema)
        )
        self._open = True
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fedpark-writer")
        self._pending: list[Future[None]] = []

    def write(self, batch: pa.RecordBatch) -> None:
        """Queue ``batch``: one thread writes while the next batch is computed (Arrow's
        writer releases the GIL); at most two wait, so memory stays bounded."""
        named = pa.RecordBatch.from_arrays(batch.columns, schema=self.schema)
        while len(self._pending) >= 2:
            self._pending.pop(0).result()  # raises the writer's error, if any
        self._pending.append(self._thread.submit(self._writer.write_batch, named))

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                for pending in self._pending:
                    pending.result()
            finally:
                self._pending.clear()
                self._thread.shutdown()
                self._writer.close()

    def commit(self) -> None:
        self.close()
        self.temporary.replace(self.target)

    def discard(self) -> None:
        self.close()
        self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def output_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"write predictions to a .parquet or .csv file, not {path.name}")
    return fmt


def open_writer(path: Path, schema: pa.Schema) -> AtomicWriter:
    return AtomicWriter(path, schema, output_format(path))
