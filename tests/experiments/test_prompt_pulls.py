"""Flower's object pulls retry in milliseconds, on the exact Flower code it was written for."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import Any

import flwr
import pytest

from fedpark.experiments import prompt_pulls


@pytest.mark.parametrize("name", sorted(prompt_pulls.PULLERS))
def test_the_calls_it_changes_are_the_calls_it_knows(name: str) -> None:
    """Fails when Flower changes: re-read the functions, then update PULLERS."""
    assert flwr.__version__ == "1.41.0"
    module = importlib.import_module(name)
    pull, functions = prompt_pulls.PULLERS[name]
    assert prompt_pulls.fingerprints(module, functions) == functions
    # The pull takes the backoff as a keyword, and Flower's call leaves it to the default.
    assert "initial_backoff" in inspect.signature(getattr(module, pull)).parameters
    caller = next(f for f in functions if f != pull)
    assert "initial_backoff" not in prompt_pulls._source(module, caller).decode()


def test_a_prompt_pull_retries_after_milliseconds_unless_told_otherwise() -> None:
    seen: list[dict[str, Any]] = []

    def pull(*args: Any, **kwargs: Any) -> str:
        seen.append(kwargs)
        return "pulled"

    prompt = prompt_pulls.prompt(pull)
    assert prompt(["id"], return_type=str) == "pulled"
    assert prompt(["id"], initial_backoff=2.0) == "pulled"
    assert seen == [
        {"return_type": str, "initial_backoff": prompt_pulls.PROMPT_BACKOFF},
        {"initial_backoff": 2.0},
    ]


def test_quickening_a_module_twice_wraps_its_pull_once(monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module("flwr.supernode.start_client_internal")
    monkeypatch.setattr(module, "pull_objects", module.pull_objects)  # restored afterwards
    original = module.pull_objects
    assert prompt_pulls.quicken(module) and prompt_pulls.quicken(module)
    assert module.pull_objects is not original
    assert module.pull_objects.__wrapped__ is original


def test_another_flower_pulls_unchanged() -> None:
    changed = ModuleType("flwr.supernode.start_client_internal")
    changed._pull_and_store_message = lambda: None  # type: ignore[attr-defined]
    changed.pull_objects = original = lambda *a, **k: None  # type: ignore[attr-defined]
    assert prompt_pulls.quicken(changed) is False
    assert changed.pull_objects is original
