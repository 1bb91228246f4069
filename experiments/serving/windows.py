"""Windows for a temporal model over a file read batch by batch.

Each series (an engine, a production run) keeps its last ``window - 1`` rows between
batches, so a window may start in one batch and end in the next, and never spans two
series. Rows must come in time order within each series (series may interleave, as in a
historian export of several lines); a row that goes back in time is an error, since the
model was trained on windows in time order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class OutOfOrderError(ValueError):
    """A series' rows are not in time order: ``row`` is the first one that goes back."""

    def __init__(self, row: int) -> None:
        super().__init__(f"row {row} is earlier than the row before it in its series")
        self.row = row


@dataclass
class _Tail:
    rows: np.ndarray  # the series' last window - 1 encoded rows
    time: object = None  # the time of its last row


@dataclass
class SeriesWindows:
    """Cuts windows ending at each row that has ``window - 1`` earlier rows in its series."""

    window: int
    n_features: int
    tails: dict[object, _Tail] = field(default_factory=dict)

    def take(
        self,
        x: np.ndarray,
        rows: np.ndarray,
        keys: np.ndarray | None,
        times: np.ndarray | None,
        offset: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Windows ``(n, window, features)`` and the batch rows they end at.

        ``rows`` are the batch rows to use (in order), ``keys`` every row's series and
        ``times`` every row's time (None: one series, or no time column).
        """
        ends: list[np.ndarray] = []
        cuts: list[np.ndarray] = []
        for key, members in self._groups(rows, keys):
            if times is not None:
                self._check_order(key, members, times, offset)
            tail = self.tails.get(key)
            before = tail.rows if tail is not None else np.zeros((0, self.n_features), x.dtype)
            sequence = np.concatenate([before, x[members]])
            keep = self.window - 1
            last = times[members[-1]] if times is not None else None
            self.tails[key] = _Tail(sequence[len(sequence) - keep :].copy(), last)
            if len(sequence) < self.window:
                continue
            view = np.lib.stride_tricks.sliding_window_view(sequence, self.window, axis=0)
            first_end = max(len(before), keep)  # the first new row with a full window
            starts = np.arange(first_end - keep, len(sequence) - keep)
            cuts.append(view[starts].transpose(0, 2, 1))
            ends.append(members[first_end - len(before) :])
        if not cuts:
            return np.zeros((0, self.window, self.n_features), np.float32), np.zeros(0, np.int64)
        return np.ascontiguousarray(np.concatenate(cuts)), np.concatenate(ends)

    @staticmethod
    def _groups(rows: np.ndarray, keys: np.ndarray | None) -> list[tuple[object, np.ndarray]]:
        if keys is None or not len(rows):
            return [(None, rows)] if len(rows) else []
        values, inverse = np.unique(keys[rows], return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(values)))
        groups, start = [], 0
        for value, end in zip(values, bounds, strict=True):
            groups.append(
                (value.item() if hasattr(value, "item") else value, rows[order[start:end]])
            )
            start = int(end)
        return groups

    def _check_order(
        self, key: object, members: np.ndarray, times: np.ndarray, offset: int
    ) -> None:
        seen = times[members]
        tail = self.tails.get(key)
        if tail is not None and tail.time is not None:
            seen = np.concatenate([np.asarray([tail.time], dtype=seen.dtype), seen])
            members = np.concatenate([[-1], members])
        backwards = np.flatnonzero(seen[1:] < seen[:-1])
        if len(backwards):
            raise OutOfOrderError(offset + int(members[backwards[0] + 1]))
