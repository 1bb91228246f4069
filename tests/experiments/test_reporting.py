"""Round reports sent in the background: in order, never lost, and a failed one fails the run
before anything after it is sent."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from samples import contract_data, package_for

from fedpark.experiments.protocol import RoundReport
from fedpark.experiments.protocol.resources.experiments import RunFinishCreate
from fedpark.experiments.reporting import BackgroundRounds, RunError


class SlowHub:
    """A reporter that takes its time, and refuses one round if told to."""

    def __init__(self, refuse: int | None = None) -> None:
        self.refuse = refuse
        self.sent: list[Any] = []
        self.release = threading.Event()

    def round(self, report: RoundReport, checkpoint: bytes) -> None:
        self.release.wait(10)
        if report.round == self.refuse:
            raise RunError("the hub refused a report (409): the experiment was stopped")
        self.sent.append(report.round)

    def finished(self, model: bytes, finish: RunFinishCreate) -> None:
        self.sent.append("model")

    def failed(self, reason: str) -> None:
        self.sent.append(f"failed: {reason}")

    def checkpoint(self, number: int) -> bytes:
        return b"weights"


def _report(number: int) -> RoundReport:
    return RoundReport(
        round=number, aggregated=True, contributors=["acme", "bravo"], min_factories=2
    )


def test_rounds_go_in_order_while_the_run_goes_on_and_the_model_waits_for_them() -> None:
    hub = SlowHub()
    reporter = BackgroundRounds(hub)
    for number in (1, 2, 3):
        reporter.round(_report(number), b"")  # returns at once: the hub is still busy
    assert hub.sent == []
    hub.release.set()
    reporter.finished(b"model", RunFinishCreate(package=package_for(contract_data())))
    assert hub.sent == [1, 2, 3, "model"]


def test_a_refused_round_fails_the_run_before_anything_after_it_is_sent() -> None:
    hub = SlowHub(refuse=2)
    hub.release.set()
    reporter = BackgroundRounds(hub)
    reporter.round(_report(1), b"")
    reporter.round(_report(2), b"")
    with pytest.raises(RunError, match="refused"):
        reporter.drain()
    with pytest.raises(RunError, match="refused"):  # and at the next round, too
        reporter.round(_report(3), b"")
    reporter.failed("the hub refused a report")
    assert hub.sent == [1, "failed: the hub refused a report"]  # no round 3, no model
