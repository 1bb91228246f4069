"""The SuperNode's idle wait: short while a run is on, Flower's own when idle, and only on
the exact Flower code it was written against."""

from __future__ import annotations

from types import ModuleType, SimpleNamespace
from typing import Any

import flwr
from flwr.supernode import start_client_internal

from fedpark.clients import node
from fedpark.experiments.prompt_pulls import fingerprints
from tests.clients.clocks import FakeClock


def test_the_code_it_shortens_is_the_code_it_knows() -> None:
    """Fails when Flower changes: re-read the functions, then update EXPECTED."""
    assert flwr.__version__ == "1.41.0"
    assert fingerprints(start_client_internal, node.EXPECTED) == node.EXPECTED
    source = "\n".join(
        __import__("inspect").getsource(getattr(start_client_internal, name))
        for name in node.EXPECTED
    )
    assert source.count("time.sleep(3)") == 1 and source.count("time.sleep(0.5)") == 2
    # and no other wait of the module's is touched
    assert __import__("inspect").getsource(start_client_internal).count("time.sleep(") == 3


def test_idle_waits_are_short_during_a_run_and_flowers_when_idle() -> None:
    fake = FakeClock()
    clock = node.BusyClock(fake)  # type: ignore[arg-type]
    clock.sleep(3)  # just started: a run may be waiting for this node
    fake.now += node.BUSY_FOR  # idle since: Flower's wait
    clock.sleep(3)
    clock.sleep(0.5)  # waiting for its ClientApp's reply: busy
    clock.sleep(3)
    clock.sleep(3)
    assert fake.slept == [node.BUSY_WAIT, 3, 0.5, node.BUSY_WAIT, node.BUSY_WAIT]
    fake.now += node.BUSY_FOR  # a minute without a message
    clock.sleep(3)
    assert fake.slept[-1] == 3
    assert clock.monotonic() == fake.now  # everything else is the clock's own


def test_another_flower_runs_unchanged() -> None:
    changed = ModuleType("start_client_internal")
    changed.start_client_internal = lambda: None  # type: ignore[attr-defined]
    changed._push_messages = lambda: None  # type: ignore[attr-defined]
    original: Any = SimpleNamespace()
    changed.time = original  # type: ignore[attr-defined]
    assert node.quicken(changed) is False
    assert changed.time is original
    renamed = ModuleType("start_client_internal")  # a function Flower renamed
    renamed.time = original  # type: ignore[attr-defined]
    assert node.quicken(renamed) is False and renamed.time is original
