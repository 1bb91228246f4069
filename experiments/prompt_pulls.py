"""Object pulls that retry in milliseconds, not seconds, on the Flower code FedPark knows.

In Flower 1.41 a message travels as a tree of objects, and a receiver that asks for an
object the sender has not finished handing over waits ``PULL_INITIAL_BACKOFF`` (1 s, then
2, 4, ...) before asking again. Two such races happen in every round of a deployment:

- the SuperNode creates the ClientApp's task *before* it pulls the message's objects from
  the SuperLink, so a ClientApp started promptly (FedPark's warm ones start in ~10 ms) asks
  its SuperNode for objects that are still on the way, and waits a full second;
- the SuperNode asks the SuperLink for a message's objects while the ServerApp may still be
  pushing them, and the ServerApp asks for a reply's objects while its SuperNode may still be
  pushing them.

Flower offers no setting for that backoff. Here the one call of each race passes
``initial_backoff=PROMPT_BACKOFF`` (doubling from 50 ms up to Flower's cap, so a slow sender
is asked no more often than Flower would after its first seconds): the module-level name of
Flower's pull function in the calling module is replaced by a wrapper that passes it, and
nothing else changes. Only for the exact code this was written against: :data:`PULLERS` holds
the sha256 of each calling function and of the pull function it calls; any other Flower runs
unchanged (with a warning), and ``tests/experiments/test_prompt_pulls.py`` fails first.
Applied by FedPark's own processes only: the SuperNode (:mod:`fedpark.clients.node`), the
warm ClientApp worker (:mod:`fedpark.clients.warm`) and the ServerApp.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

PROMPT_BACKOFF = 0.05  # seconds before the first retry of an object not there yet
# module -> (the name it calls the pull by, {function: sha256 of its source}), flwr 1.41.0
PULLERS: dict[str, tuple[str, dict[str, str]]] = {
    "flwr.supernode.runtime.run_clientapp": (
        "pull_and_inflate_object_from_tree",
        {
            "pull_task_input": "5607a23e1673ee876930c1b35685b8dfdfd8b3776a436560b0467042e15fc695",
            "pull_and_inflate_object_from_tree": (
                "139811483a15e4a6c1f8523614c12f28dd3049194e5713816be0931387adb1cf"
            ),
        },
    ),
    "flwr.supernode.start_client_internal": (
        "pull_objects",
        {
            "_pull_and_store_message": (
                "eaf5d0e36dc34e4cf46a490511d077ac55cc8edbbcdbe938c1f6dbcb758628be"
            ),
            "pull_objects": "31bb2de46b450e6acfadb7a8bb15e3f2074bb112199826a40a5eaa648bad5b2b",
        },
    ),
    "flwr.superlink.grid.http_grid": (
        "pull_objects",
        {
            "HttpGrid.pull_messages": (
                "67a5266a5a2ed51557437a15ef4c8844f46576bc5bb6b0753d2a2f6230a3aa83"
            ),
            "pull_objects": "31bb2de46b450e6acfadb7a8bb15e3f2074bb112199826a40a5eaa648bad5b2b",
        },
    ),
}


def fingerprints(module: ModuleType, functions: dict[str, str]) -> dict[str, str]:
    """sha256 of each named function's source (``Class.method`` for a method)."""
    return {name: hashlib.sha256(_source(module, name)).hexdigest() for name in functions}


def is_known(module: ModuleType, expected: dict[str, str]) -> bool:
    """Whether the named functions of ``module`` are the code FedPark was written against."""
    try:
        return fingerprints(module, expected) == expected
    except (AttributeError, OSError, TypeError):  # a function renamed, or no source installed
        return False


def replace_time(module: ModuleType, expected: dict[str, str], clock: Any, what: str) -> bool:
    """Give ``module`` ``clock`` as its ``time``, if its ``expected`` functions are the code
    FedPark was written against (else warn that ``what`` stays); whether it did."""
    if not is_known(module, expected):
        log.warning("this Flower's code is not the one FedPark knows: %s stays", what)
        return False
    module.time = clock  # type: ignore[attr-defined]
    return True


def _source(module: ModuleType, dotted: str) -> bytes:
    target: Any = module
    for part in dotted.split("."):
        target = getattr(target, part)
    return inspect.getsource(target).encode()


def prompt(pull: Callable[..., Any]) -> Callable[..., Any]:
    """``pull`` with a first retry after :data:`PROMPT_BACKOFF` unless the caller says."""

    @functools.wraps(pull)
    def pull_promptly(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("initial_backoff", PROMPT_BACKOFF)
        return pull(*args, **kwargs)

    pull_promptly.fedpark_prompt = True  # type: ignore[attr-defined]
    return pull_promptly


def quicken(module: ModuleType) -> bool:
    """Make ``module``'s pull prompt (one of :data:`PULLERS`), if its code is the code this
    was written against; whether it did. Calling it twice changes nothing more."""
    name, expected = PULLERS[module.__name__]
    if not is_known(module, expected):
        log.warning("this Flower's %s is not the one FedPark knows: its pulls wait", name)
        return False
    pull = getattr(module, name)
    if not getattr(pull, "fedpark_prompt", False):
        setattr(module, name, prompt(pull))
    return True
