"""What the ServerApp records each round: per-factory results, refusals, checkpoints."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import httpx
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

log = logging.getLogger(__name__)


class RunError(RuntimeError):
    """The run cannot go on; the message, in FedPark's own words, becomes the experiment's."""


class Reporter(Protocol):
    def round(self, report: RoundReport, checkpoint: bytes) -> None: ...

    def finished(self, model: bytes, summary: dict[str, Any]) -> None: ...

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

    def finished(self, model: bytes, summary: dict[str, Any]) -> None:
        (self.directory / "model.safetensors").write_bytes(model)
        (self.directory / "summary.json").write_text(json.dumps(summary, indent=2))

    def failed(self, reason: str) -> None:
        (self.directory / "failure.json").write_text(json.dumps({"reason": reason}))

    def checkpoint(self, number: int) -> bytes:
        return (self.directory / f"checkpoint-{number:04d}.safetensors").read_bytes()


class HubReporter:
    """Posts each round and the final model to the hub, authenticated with the run token.

    Transient failures are retried with backoff: a report lost to a network blip would be a
    round missing from the provenance manifest.
    """

    def __init__(
        self, hub_url: str, run_token: str, experiment_id: str, patience: float = 600.0
    ) -> None:
        self.base = f"{hub_url.rstrip('/')}/api/v1/runs/{experiment_id}"
        self.http = httpx.Client(headers={"Authorization": f"Bearer {run_token}"}, timeout=120)
        self.patience = patience  # seconds a report keeps trying: a hub restart, an outage

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send until the hub answers, for up to ``patience`` seconds.

        Every report is idempotent at the hub (a retry of a request whose answer was lost is
        accepted), so retrying after a timeout or a restart never records anything twice.
        """
        deadline = time.monotonic() + self.patience
        delay = 0.5
        while True:
            try:
                response = self.http.request(method, self.base + path, **kwargs)
            except httpx.TransportError:
                if time.monotonic() + delay > deadline:
                    raise
            else:
                if response.status_code < 400:
                    return response
                if response.status_code < 500 and response.status_code != 429:
                    raise RunError(_refusal(method, path, response))
                if time.monotonic() + delay > deadline:
                    response.raise_for_status()
            log.warning("the hub did not take %s %s: retrying in %.1fs", method, path, delay)
            time.sleep(delay)
            delay = min(15.0, delay * 2)

    def round(self, report: RoundReport, checkpoint: bytes) -> None:
        self._send(
            "PUT",
            f"/rounds/{report.round}/checkpoint",
            content=checkpoint,
            headers={"Content-Type": "application/octet-stream"},
        )
        self._send("POST", "/rounds", json=report.model_dump(mode="json"))

    def finished(self, model: bytes, summary: dict[str, Any]) -> None:
        self._send(
            "PUT", "/model", content=model, headers={"Content-Type": "application/octet-stream"}
        )
        self._send("POST", "/finish", json={"summary": summary})

    def failed(self, reason: str) -> None:
        self._send("POST", "/fail", json={"reason": reason[:4000]})

    def checkpoint(self, number: int) -> bytes:
        return self._send("GET", f"/rounds/{number}/checkpoint").content


def _refusal(method: str, path: str, response: httpx.Response) -> str:
    """The hub's refusal of a report, in the hub's words (its problem detail)."""
    try:
        detail = str(response.json().get("detail", ""))[:500]
    except ValueError:
        detail = ""
    return f"the hub refused {method} {path} ({response.status_code}): {detail or 'no detail'}"


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
