"""``flower-supernode`` whose idle wait follows the work.

Flower 1.41's SuperNode (``flwr.supernode.start_client_internal``) asks the SuperLink for a
message, and when there is none sleeps a fixed 3 s before asking again. In a run, the next
message (the next round, or evaluation after training) is usually there a moment after this
node replied, and waits up to those 3 s: seconds per round, every round. Here the SuperNode
runs unchanged except for that wait: 200 ms while the node is busy with a run (it handled a
message in the last minute, or started less than a minute ago), Flower's 3 s once it has
been idle a minute, so a park of idle factories asks the SuperLink no more often than
Flower's own nodes do.
Its SuperExec is FedPark's too (:mod:`fedpark.clients.superexec`): a task poll that relaxes
the same way when the factory is idle.

The wait is Flower's module-level ``time`` in that one module, replaced by a clock that
differs only in ``sleep``. It is replaced only for the exact code it was written against:
:data:`EXPECTED` holds the sha256 of the two functions whose sleeps it shortens, and any
other Flower runs unchanged (with a warning); ``tests/clients/test_node.py`` fails first.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

FLOWER_IDLE_WAIT = 3.0  # the sleep Flower takes when there was no message
BUSY_WAIT = 0.2  # ours, while the node is busy with a run
BUSY_FOR = 60.0  # seconds after the last message during which the node counts as busy
# sha256 of inspect.getsource() of the functions whose sleeps are changed, flwr 1.41.0.
EXPECTED = {
    "start_client_internal": "9e89a6eb68fbec6821e817cd2c09f7894fc7b0f5725c2365b19a7122307f11f3",
    "_push_messages": "00bb86faffdec114db87e7f716af2acd901d12284e44f51f5c2a84704db05f64",
}


class BusyClock:
    """The ``time`` module, but an idle wait right after work is short."""

    def __init__(self, clock: ModuleType = time) -> None:
        self._clock = clock
        # A node that has just joined counts as busy: a run is often waiting for it (the
        # ServerApp waits for its nodes), and its first message should not wait 3 s.
        self.last_busy = clock.monotonic()

    def sleep(self, seconds: float) -> None:
        now = self._clock.monotonic()
        if seconds != FLOWER_IDLE_WAIT:  # waiting for this node's own reply: it is at work
            self.last_busy = now
        elif now - self.last_busy < BUSY_FOR:
            seconds = BUSY_WAIT
        self._clock.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clock, name)


def quicken(module: ModuleType) -> bool:
    """Give ``module`` (Flower's ``start_client_internal``) a :class:`BusyClock`, if its
    code is the code this was written against; whether it did."""
    from fedpark.experiments.prompt_pulls import replace_time

    return replace_time(module, EXPECTED, BusyClock(), "the SuperNode's idle wait")


def main() -> None:
    from flwr.supernode import start_client_internal
    from flwr.supernode.cli import flower_supernode

    from fedpark.clients import superexec
    from fedpark.experiments import prompt_pulls

    home = os.environ.get("FLWR_HOME")
    if home:  # FedPark's SuperNodes have their own (clients.supernode.flower_env)
        superexec.install(Path(home))
    quicken(start_client_internal)
    prompt_pulls.quicken(start_client_internal)  # objects still on their way from the ServerApp
    sys.argv[0] = "flower-supernode"
    flower_supernode()


if __name__ == "__main__":
    main()
