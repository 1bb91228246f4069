"""What the ServerApp records each round: per-factory results, refusals, checkpoints."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from flwr.app import Message

from fedpark.experiments.run_spec import REFUSED


@dataclass
class FactoryResult:
    org: str
    node_id: int
    examples: int
    metrics: dict[str, float]


@dataclass
class RoundReport:
    round: int
    train: dict[str, float] = field(default_factory=dict)
    evaluate: dict[str, float] = field(default_factory=dict)
    train_factories: list[FactoryResult] = field(default_factory=list)
    evaluate_factories: list[FactoryResult] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Reporter(Protocol):
    def round(self, report: RoundReport, checkpoint: bytes) -> None: ...

    def finished(self, model: bytes, summary: dict[str, Any]) -> None: ...


class DirectoryReporter:
    """Rounds as JSON, checkpoints and the final model as safetensors, in one folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def round(self, report: RoundReport, checkpoint: bytes) -> None:
        (self.directory / f"round-{report.round:04d}.json").write_text(
            json.dumps(asdict(report), indent=2)
        )
        (self.directory / f"checkpoint-{report.round:04d}.safetensors").write_bytes(checkpoint)

    def finished(self, model: bytes, summary: dict[str, Any]) -> None:
        (self.directory / "model.safetensors").write_bytes(model)
        (self.directory / "summary.json").write_text(json.dumps(summary, indent=2))


def factory_results(
    replies: Iterable[Message],
) -> tuple[list[FactoryResult], list[dict[str, str]], list[str]]:
    """Split replies into results, contract refusals and other failures (no data in any)."""
    results, refused, failures = [], [], []
    for reply in replies:
        node = reply.metadata.src_node_id
        if reply.has_error():
            reason = reply.error.reason or f"error code {reply.error.code}"
            if reason.startswith(REFUSED):
                org, _, detail = reason.removeprefix(REFUSED).strip().partition(":")
                refused.append({"org": org.strip(), "node_id": str(node), "reason": detail.strip()})
            else:
                failures.append(f"node {node}: {reason[:300]}")
            continue
        content = reply.content
        org = str(content["fedpark"]["org"]) if "fedpark" in content else str(node)
        metrics = {k: float(v) for k, v in content["metrics"].items()}  # type: ignore[arg-type]
        examples = int(metrics.pop("num-examples", 0))
        results.append(FactoryResult(org, node, examples, metrics))
    return results, refused, failures
