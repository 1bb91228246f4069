"""A strategy wrapper that holds every round to the contract, and records it.

It wraps one of Flower's strategies the way Flower's own differential-privacy strategies
do (``DifferentialPrivacyClientSideFixedClipping(strategy, ...)``): the learning is the inner
strategy's; this wrapper decides which replies reach it and writes down what happened.

One message per factory per round: Flower's ``Strategy.start`` sends every round's model out
twice, to train and then to evaluate. Here a round's evaluation travels with the next round's
training instead (the training message asks the factory to evaluate the model it carries
first, :data:`EVALUATE_FIRST`), so a round is recorded when the next one's replies are in;
only the last round sends evaluation messages of its own. The report of each round is the
same as with separate messages: same model, same rows, same metrics.

::

    round r:   train(model r-1, evaluate it first) -> record round r-1 -> aggregate -> model r
    last:      train(...) -> record the round before -> aggregate -> evaluate -> record it
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.app.message.message import make_message
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy

from fedpark.experiments.protocol import (
    ALONE_PREFIX,
    EVALUATE_FIRST,
    EVALUATION_RECORD,
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
    arrays: ArrayRecord | None = None  # the global model after this round, once aggregated


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
        self.pending: _Round | None = None  # aggregated, waiting for its evaluation
        self.last_round = 0  # the number of the round that evaluates on its own

    def __repr__(self) -> str:
        return f"ContractStrategy(k={self.min_factories}, {self.strategy!r})"

    def summary(self) -> None:
        log.info("\t├──> FedPark: at least %d factories per aggregate", self.min_factories)
        self.strategy.summary()

    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None,
    ) -> Result:
        """Flower's loop, told which round is the last (it evaluates with messages of its own)."""
        self.last_round = num_rounds
        return super().start(
            grid, initial_arrays, num_rounds, timeout, train_config, evaluate_config, evaluate_fn
        )

    # -- training --------------------------------------------------------------------------

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.current_arrays = arrays
        if self.pending is not None:  # the model sent is the pending round's: evaluate it
            config = ConfigRecord({**config, EVALUATE_FIRST: True})
        messages = list(self.strategy.configure_train(server_round, arrays, config, grid))
        self.current = _Round(self.offset + server_round, _destinations(messages))
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        if self.pending is not None:
            self._evaluated(self.pending, [e for r in replies if (e := _evaluation(r))])
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
        if server_round < self.last_round:  # evaluated with the next round's training
            return []
        messages = list(self.strategy.configure_evaluate(server_round, arrays, config, grid))
        self.current.sent = _destinations(messages)
        return messages

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        state = self.current
        if not state.aggregated or server_round < self.last_round:  # nothing was sent
            return None
        updates, results = self._sort(replies, state, train=False)
        state.evaluate_factories = results
        if len({r.org for r in results}) < self.min_factories:
            return None  # an average of fewer than k factories' metrics is not published
        metrics = self.strategy.aggregate_evaluate(server_round, updates)
        # the federated model's figures; each factory's alone-baseline stays per factory
        # (the gain table), an average of them describes no model
        state.evaluate = {
            k: v for k, v in _floats(metrics).items() if not k.startswith(ALONE_PREFIX)
        }
        return metrics

    # -- reporting -------------------------------------------------------------------------

    def _evaluated(self, state: _Round, replies: list[Message]) -> None:
        """Record ``state``'s round with the evaluation the next round's replies carried."""
        state.sent = set()  # a factory that sent no evaluation is this round's news, if any
        _, results = self._sort(replies, state, train=False)
        state.evaluate_factories = results
        if len({r.org for r in results}) >= self.min_factories:
            metrics = self.strategy.aggregate_evaluate(state.number - self.offset, replies)
            state.evaluate = _floats(metrics)
        self.pending = None
        assert state.arrays is not None
        self._record(self._report(state), state.arrays)

    def end_of_round(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """Flower's ``evaluate_fn`` hook: called with the global weights after each round.

        An aggregated round before the last waits for its evaluation (the next round's
        replies bring it); any other is recorded now."""
        if server_round <= 0:
            return None
        if self.current.aggregated and server_round < self.last_round:
            self.current.arrays, self.pending = arrays, self.current
        else:
            self._record(self._report(), arrays)
        return None

    def _record(self, report: RoundReport, arrays: ArrayRecord) -> None:
        checkpoint = numpy_to_safetensors({k: v.numpy() for k, v in arrays.items()})
        self.reporter.round(report, checkpoint)
        self.history.append(report)

    def _report(self, state: _Round | None = None) -> RoundReport:
        state = state or self.current
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


def _evaluation(reply: Message) -> Message | None:
    """The evaluation a training reply carries, as the evaluation reply it stands for."""
    if reply.has_error() or EVALUATION_RECORD not in reply.content:
        return None
    try:
        metrics = MetricRecord(dict(reply.content[EVALUATION_RECORD]))  # type: ignore[arg-type]
    except (TypeError, ValueError):  # not metrics: this factory's evaluation is left out
        log.warning("node %s sent an evaluation that is not metrics", reply.metadata.src_node_id)
        return None
    content = RecordDict({"metrics": metrics})
    if "fedpark" in reply.content:
        content["fedpark"] = reply.content["fedpark"]
    return make_message(reply.metadata, content)


def _destinations(messages: list[Message]) -> set[int]:
    return {int(m.metadata.dst_node_id) for m in messages}


def _floats(metrics: MetricRecord | None) -> dict[str, float]:
    return {k: float(v) for k, v in (metrics or {}).items()}  # type: ignore[arg-type]
