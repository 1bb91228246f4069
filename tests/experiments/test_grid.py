"""PromptGrid: Flower's grid for everything, its own wait for replies; a SuperLink lost
under the ServerApp is a lost link, not the run's failure."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from flwr.app import Context, RecordDict
from samples import contract_data

from fedpark.experiments.grid import PromptGrid, SuperLinkLostError
from fedpark.experiments.protocol import SPEC_KEY, DirectoryOutput, RunSpec
from fedpark.experiments.server_app import main


class FakeGrid:
    """Replies arrive ``delays`` seconds after the push, one per message; pulls counted."""

    def __init__(self, delays: list[float]) -> None:
        self.delays = delays
        self.pulls = 0
        self.pushed_at = 0.0
        self.calls: list[str] = []

    def push_messages(self, messages: Iterable[Any]) -> list[str]:
        self.pushed_at = time.monotonic()
        return [f"m{i}" for i, _ in enumerate(messages)]

    def pull_messages(self, message_ids: Iterable[str]) -> list[Any]:
        self.pulls += 1
        now = time.monotonic() - self.pushed_at
        ready = [m for m in message_ids if self.delays[int(m[1:])] <= now]
        return [SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id=m)) for m in ready]

    def get_node_ids(self) -> list[int]:
        self.calls.append("get_node_ids")
        return [1, 2]


def _grid(fake: FakeGrid, **waits: float) -> PromptGrid:
    return PromptGrid(fake, **waits)  # type: ignore[arg-type]  # a duck-typed inner grid


def test_replies_are_collected_as_they_arrive_not_seconds_later() -> None:
    fake = FakeGrid([0.05, 0.15, 0.2])
    started = time.monotonic()
    replies = list(_grid(fake).send_and_receive(["a", "b", "c"], timeout=10))  # type: ignore[list-item]
    took = time.monotonic() - started
    assert sorted(r.metadata.reply_to_message_id for r in replies) == ["m0", "m1", "m2"]
    assert took < 0.2 + 0.3  # Flower's grid would have slept 3 s between pulls
    assert fake.pulls < 20


def test_a_long_wait_backs_off() -> None:
    fake = FakeGrid([0.3])
    grid = _grid(fake, first_wait=0.005, longest_wait=0.1)
    list(grid.send_and_receive(["a"], timeout=10))  # type: ignore[list-item]
    assert 5 <= fake.pulls <= 13  # 5 ms growing to 100 ms: not 60 pulls


def test_the_timeout_returns_what_came() -> None:
    fake = FakeGrid([0.05, 60.0])
    started = time.monotonic()
    replies = list(_grid(fake).send_and_receive(["a", "b"], timeout=0.3))  # type: ignore[list-item]
    assert 0.3 <= time.monotonic() - started < 0.8
    assert [r.metadata.reply_to_message_id for r in replies] == ["m0"]


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_nothing_is_pulled_once_every_reply_came(timeout: float | None) -> None:
    fake = FakeGrid([0.0, 0.0])
    list(_grid(fake).send_and_receive(["a", "b"], timeout=timeout))  # type: ignore[list-item]
    assert fake.pulls == 1


def test_every_other_call_is_the_inner_grids() -> None:
    fake = FakeGrid([])
    assert list(_grid(fake).get_node_ids()) == [1, 2] and fake.calls == ["get_node_ids"]


class LostGrid(FakeGrid):
    """A grid whose SuperLink answers with ``error`` (what Flower's retries give up on)."""

    def __init__(self, error: Exception) -> None:
        super().__init__([])
        self.error = error

    def get_node_ids(self) -> list[int]:
        raise self.error

    def push_messages(self, messages: Iterable[Any]) -> list[str]:
        raise self.error


def _status_error(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://superlink/v1/runtime/push-messages")
    return httpx.HTTPStatusError("x", request=request, response=httpx.Response(code))


@pytest.mark.parametrize(
    "error", [_status_error(500), _status_error(404), httpx.ConnectError("refused")]
)
def test_a_superlink_error_is_a_lost_link(error: Exception) -> None:
    grid = _grid(LostGrid(error))
    with pytest.raises(SuperLinkLostError) as lost:
        grid.get_node_ids()
    assert lost.value.__cause__ is error and str(lost.value) == ""
    with pytest.raises(SuperLinkLostError):
        grid.send_and_receive(["a"], timeout=1)  # type: ignore[list-item]


def _main(tmp_path: Path, grid: FakeGrid) -> None:
    spec = RunSpec(
        experiment_id="exp-x",
        contract=contract_data(),
        contract_sha256="0" * 64,
        rounds=2,
        output=DirectoryOutput(directory=str(tmp_path)),
    )
    context = Context(0, 0, {}, RecordDict(), {SPEC_KEY: spec.model_dump_json()})
    main(grid, context)  # type: ignore[arg-type]  # a duck-typed grid


def test_a_serverapp_that_loses_its_superlink_reports_no_failure(tmp_path: Path) -> None:
    """A restarting SuperLink may answer the old ServerApp with an error Flower's retries give
    up on; were that reported as the run's failure, the hub could not resume the run."""
    with pytest.raises(SuperLinkLostError):
        _main(tmp_path, LostGrid(_status_error(500)))
    assert not (tmp_path / "failure.json").exists()
    # The control: any other error in the ServerApp is the run's failure, and said so.
    with pytest.raises(ValueError):
        _main(tmp_path, LostGrid(ValueError("a value from somewhere")))
    failure = json.loads((tmp_path / "failure.json").read_text())
    assert failure == {"reason": "the ServerApp failed (ValueError); see the run's log"}
