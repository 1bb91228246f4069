"""What the ServerApp records each round: per-factory results, refusals, checkpoints."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Protocol

from flwr.app import Message

from fedpark.experiments.protocol import (
    FAILURE_CODE,
    FLOWER_ERROR_KINDS,
    REFUSAL_CODE,
    FactoryProblem,
    FactoryRefusal,
    FactoryResult,
    FailureKind,
    NodeFailure,
    ProblemKind,
    RoundReport,
)
from fedpark.experiments.protocol.client import HubClient, RetryPolicy
from fedpark.experiments.protocol.errors import HubApiError
from fedpark.experiments.protocol.resources.experiments import RunFailureCreate, RunFinishCreate

log = logging.getLogger(__name__)


class RunError(RuntimeError):
    """The run cannot go on; the message, in FedPark's own words, becomes the experiment's."""


class Reporter(Protocol):
    def round(self, report: RoundReport, checkpoint: bytes) -> None: ...

    def finished(self, model: bytes, finish: RunFinishCreate) -> None: ...

    def failed(self, reason: str) -> None: ...

    def checkpoint(self, number: int) -> bytes:
        """The weights recorded after round ``number`` (where a resumed run starts)."""
        ...


class DirectoryReporter:
    """Rounds as JSON, checkpoints and the final model as safetensors, in one folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def round(self, report: RoundReport, checkpoint: bytes) -> None:
        (self.directory / f"round-{report.round:04d}.json").write_text(
            report.model_dump_json(indent=2)
        )
        (self.directory / f"checkpoint-{report.round:04d}.safetensors").write_bytes(checkpoint)

    def finished(self, model: bytes, finish: RunFinishCreate) -> None:
        (self.directory / "model.safetensors").write_bytes(model)
        (self.directory / "summary.json").write_text(json.dumps(finish.summary, indent=2))
        (self.directory / "package.json").write_text(finish.package.model_dump_json(indent=2))

    def failed(self, reason: str) -> None:
        (self.directory / "failure.json").write_text(json.dumps({"reason": reason}))

    def checkpoint(self, number: int) -> bytes:
        return (self.directory / f"checkpoint-{number:04d}.safetensors").read_bytes()


class BackgroundRounds:
    """A reporter whose rounds are sent by one background thread, in order, while the next
    round trains; everything else waits until the rounds before it are sent.

    A round's report is two requests to the hub (checkpoint, then metrics); sent in line,
    the next round's messages wait for them. A report that fails (the hub refused it, or
    was unreachable past the inner reporter's patience) fails the run at the next call,
    with that report's error: no later round, no model, is sent after it.
    """

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fedpark-reports")
        self._sent: list[Future[None]] = []

    def round(self, report: RoundReport, checkpoint: bytes) -> None:
        self._raise_failed()
        self._sent.append(self._pool.submit(self.inner.round, report, checkpoint))

    def finished(self, model: bytes, finish: RunFinishCreate) -> None:
        self.drain()
        self.inner.finished(model, finish)

    def failed(self, reason: str) -> None:
        with suppress(Exception):  # the run fails anyway: with this reason, if it can
            self.drain()
        self.inner.failed(reason)

    def checkpoint(self, number: int) -> bytes:
        self.drain()
        return self.inner.checkpoint(number)

    def drain(self) -> None:
        """Wait for every round sent so far; raise the first one's error."""
        for sent in self._sent:
            sent.result()
        self._sent.clear()

    def _raise_failed(self) -> None:
        done = [sent for sent in self._sent if sent.done()]
        for sent in done:
            sent.result()  # raises its error
            self._sent.remove(sent)


class HubReporter:
    """Posts each round and the final model to the hub, authenticated with the run token.

    Transient failures (the network, a hub restart, 429 and 5xx) are retried for up to
    ``patience`` seconds: a report lost to a blip would be a round missing from the
    provenance manifest. Every report is idempotent at the hub (a retry of a request whose
    answer was lost is accepted), so a retry never records anything twice. A refusal (4xx)
    ends the run with the hub's words.
    """

    def __init__(
        self, hub_url: str, run_token: str, experiment_id: str, patience: float = 600.0
    ) -> None:
        self.experiment_id = experiment_id
        self.hub = HubClient(hub_url, run_token, timeout=120, retry=RetryPolicy(patience))

    def round(self, report: RoundReport, checkpoint: bytes) -> None:
        with _refusals():
            self.hub.put_checkpoint(self.experiment_id, report.round, checkpoint)
            self.hub.report_round(self.experiment_id, report)

    def finished(self, model: bytes, finish: RunFinishCreate) -> None:
        with _refusals():
            self.hub.put_model(self.experiment_id, model)
            self.hub.finish(self.experiment_id, finish)

    def failed(self, reason: str) -> None:
        with _refusals():
            self.hub.fail(self.experiment_id, RunFailureCreate(reason=reason[:4000]))

    def checkpoint(self, number: int) -> bytes:
        with _refusals():
            return self.hub.checkpoint(self.experiment_id, number)


@contextmanager
def _refusals() -> Iterator[None]:
    """The hub's refusal of a report ends the run, in the hub's words (its problem detail)."""
    try:
        yield
    except HubApiError as exc:
        if exc.status < 500 and exc.status != 429:
            raise RunError(f"the hub refused a report ({exc.status}): {exc.detail[:500]}") from None
        raise


def sort_replies(
    replies: Iterable[Message], columns: set[str]
) -> tuple[list[FactoryResult], list[FactoryRefusal], list[NodeFailure]]:
    """Split replies into results, refusals and failures, reading no text from any reply.

    A FedPark ClientApp's error carries a :class:`FactoryProblem` (JSON); it is parsed, and a
    column it names is kept only if it is one of ``columns`` (the contract's). A factory that
    is not a participant (Flower samples every connected node) is left out altogether. Any other
    error is known by its code alone: Flower's own replies quote the exception of the
    ClientApp that failed, and exceptions quote their input.
    """
    results, refused, failures = [], [], []
    for reply in replies:
        node = int(reply.metadata.src_node_id)
        if not reply.has_error():
            try:
                results.append(_result(node, reply))
            except (KeyError, TypeError, ValueError):
                failures.append(NodeFailure.of(node, FailureKind.INVALID_REPLY))
            continue
        code = int(reply.error.code)
        if code not in (REFUSAL_CODE, FAILURE_CODE):
            kind = FLOWER_ERROR_KINDS.get(code, FailureKind.UNKNOWN)
            failures.append(NodeFailure.of(node, kind))
            continue
        try:
            problem = FactoryProblem.model_validate_json(reply.error.reason or "")
        except ValueError:
            failures.append(NodeFailure.of(node, FailureKind.INVALID_REPLY))
            continue
        problem = problem.without_foreign_column(columns)
        if problem.kind is ProblemKind.NOT_INVITED:
            continue  # a factory outside the experiment: not part of its report
        if problem.refused and code == REFUSAL_CODE:
            refused.append(FactoryRefusal.of(node, problem))
        else:
            failures.append(NodeFailure.of(node, FailureKind.FACTORY_ERROR, problem))
    return results, refused, failures


def _result(node: int, reply: Message) -> FactoryResult:
    content = reply.content
    org = str(content["fedpark"]["org"]) if "fedpark" in content else str(node)
    metrics = {k: float(v) for k, v in content["metrics"].items()}  # type: ignore[arg-type]
    examples = int(metrics.pop("num-examples", 0))
    return FactoryResult(org=org, node_id=node, examples=examples, metrics=metrics)
