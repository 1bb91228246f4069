"""A strategy wrapper that holds every round to the contract, and records it.

It wraps one of Flower's strategies the way Flower's own differential-privacy strategies
do (``DifferentialPrivacyClientSideFixedClipping(strategy, ...)``): the learning is the inner
strategy's; this wrapper decides which replies reach it and writes down what happened.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fedpark.experiments.protocol import (
    FactoryRefusal,
    FactoryResult,
    FailureKind,
    NodeFailure,
    RoundReport,
)
from fedpark.experiments.reporting import Reporter, RunError, sort_replies
from fedpark.experiments.weights import numpy_to_safetensors

log = logging.getLogger(__name__)


class TooFewFactoriesError(RunError):
    """Rounds aggregated nothing because fewer than k factories contributed; the run ends."""


@dataclass
class _Round:
    """What one round has seen so far (the report is built from it at the round's end)."""

    number: int
    sent: set[int] = field(default_factory=set)
    aggregated: bool = False
    contributors: list[str] = field(default_factory=list)
    train: dict[str, float] = field(default_factory=dict)
    evaluate: dict[str, float] = field(default_factory=dict)
    train_factories: list[FactoryResult] = field(default_factory=list)
    evaluate_factories: list[FactoryResult] = field(default_factory=list)
    refused: list[FactoryRefusal] = field(default_factory=list)
    failures: list[NodeFailure] = field(default_factory=list)


class ContractStrategy(Strategy):
    """Aggregate only what the contract allows; report every round.

    Before the inner strategy sees a round's replies, they are sorted into updates, refusals
    and failures (typed, no text of any reply kept: :func:`sort_replies`), and only the
    updates are handed on: Flower's strategies log error replies' text, and its DP wrappers
    skip any round that has one. A round whose updates come from fewer than
    ``min_factories`` distinct factories aggregates nothing: the inner strategy never sees
    them and the global model stays as it was (a model from one factory's update is that
    factory's data in another form). Such a round is reported with the reason, its
    evaluation is skipped, and after ``rounds_below_k`` of them the run ends with
    :class:`TooFewFactoriesError`.

    Parameters
    ----------
    strategy : Strategy
        The strategy that learns (one of Flower's, possibly DP-wrapped).
    reporter : Reporter
        Where each round's report and checkpoint go.
    min_factories : int
        k: the fewest distinct factories whose updates may form an aggregate.
    columns : set[str]
        The contract's columns: the only column names a refusal may carry on.
    rounds_below_k : int (default: 1)
        Rounds below k that end the run (1: the first one does).
    offset : int (default: 0)
        Rounds done before this run (a resumed run counts on from them).
    """

    def __init__(
        self,
        strategy: Strategy,
        reporter: Reporter,
        *,
        min_factories: int,
        columns: set[str],
        rounds_below_k: int = 1,
        offset: int = 0,
    ) -> None:
        if min_factories < 1 or rounds_below_k < 1:
            raise ValueError("min_factories and rounds_below_k must be at least 1")
        self.strategy = strategy
        self.reporter = reporter
        self.min_factories = min_factories
        self.columns = columns
        self.rounds_below_k = rounds_below_k
        self.offset = offset
        self.history: list[RoundReport] = []
        self.current = _Round(offset + 1)
        self.current_arrays = ArrayRecord()

    def __repr__(self) -> str:
        return f"ContractStrategy(k={self.min_factories}, {self.strategy!r})"

    def summary(self) -> None:
        log.info("\t├──> FedPark: at least %d factories per aggregate", self.min_factories)
        self.strategy.summary()

    # -- training --------------------------------------------------------------------------

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.current_arrays = arrays
        messages = list(self.strategy.configure_train(server_round, arrays, config, grid))
        self.current = _Round(self.offset + server_round, _destinations(messages))
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        state = self.current
        updates, results = self._sort(replies, state, train=True)
        state.train_factories = results
        contributors = sorted({r.org for r in results})
        if len(contributors) < self.min_factories:
            self._below_k(state, contributors)
            return None, None
        arrays, metrics = self.strategy.aggregate_train(server_round, updates)
        state.aggregated = arrays is not None
        state.contributors = contributors if arrays is not None else []
        state.train = _floats(metrics)
        return arrays, metrics

    def _below_k(self, state: _Round, contributors: list[str]) -> None:
        state.aggregated, state.contributors = False, contributors
        report = self._report()
        log.warning("%s", report.below_k)
        below = 1 + sum(not r.aggregated for r in self.history)
        if below >= self.rounds_below_k:
            self._record(report, self.current_arrays)
            detail = "; ".join(
                [f"{r.org} refused: {r.reason}" for r in report.refused]
                + [f"{f.org or f'node {f.node_id}'}: {f.reason}" for f in report.failures]
            )
            raise TooFewFactoriesError(f"{report.below_k}" + (f" ({detail})" if detail else ""))

    # -- evaluation ------------------------------------------------------------------------

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if not self.current.aggregated:  # the model did not change: nothing new to evaluate
            return []
        messages = list(self.strategy.configure_evaluate(server_round, arrays, config, grid))
        self.current.sent = _destinations(messages)
        return messages

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        state = self.current
        if not state.aggregated:
            return None
        updates, results = self._sort(replies, state, train=False)
        state.evaluate_factories = results
        if len({r.org for r in results}) < self.min_factories:
            return None  # an average of fewer than k factories' metrics is not published
        metrics = self.strategy.aggregate_evaluate(server_round, updates)
        state.evaluate = _floats(metrics)
        return metrics

    # -- reporting -------------------------------------------------------------------------

    def end_of_round(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """Flower's ``evaluate_fn`` hook: called with the global weights after each round."""
        if server_round > 0:
            self._record(self._report(), arrays)
        return None

    def _record(self, report: RoundReport, arrays: ArrayRecord) -> None:
        checkpoint = numpy_to_safetensors({k: v.numpy() for k, v in arrays.items()})
        self.reporter.round(report, checkpoint)
        self.history.append(report)

    def _report(self) -> RoundReport:
        state = self.current
        return RoundReport(
            round=state.number,
            aggregated=state.aggregated,
            contributors=state.contributors,
            min_factories=self.min_factories,
            train=state.train,
            evaluate=state.evaluate,
            train_factories=state.train_factories,
            evaluate_factories=state.evaluate_factories,
            refused=state.refused,
            failures=state.failures,
        )

    def _sort(
        self, replies: Iterable[Message], state: _Round, *, train: bool
    ) -> tuple[list[Message], list[FactoryResult]]:
        """The replies that carry an update or metrics, and what they say; refusals and
        failures (and sampled nodes that never replied) go into the round's state."""
        replies = list(replies)
        results, refused, failures = sort_replies(replies, self.columns)
        answered = {int(r.metadata.src_node_id) for r in replies}
        failures += [
            NodeFailure.of(node, FailureKind.NO_REPLY) for node in sorted(state.sent - answered)
        ]
        known = {r.org for r in state.refused}
        state.refused += [r for r in refused if r.org not in known]
        if train or not state.failures:
            state.failures += failures
        else:  # a node that failed in training and again in evaluation is listed once
            seen = {(f.node_id, f.kind) for f in state.failures}
            state.failures += [f for f in failures if (f.node_id, f.kind) not in seen]
        good = {r.node_id for r in results}
        updates = [r for r in replies if not r.has_error() and r.metadata.src_node_id in good]
        return updates, results


def _destinations(messages: list[Message]) -> set[int]:
    return {int(m.metadata.dst_node_id) for m in messages}


def _floats(metrics: MetricRecord | None) -> dict[str, float]:
    return {k: float(v) for k, v in (metrics or {}).items()}  # type: ignore[arg-type]
