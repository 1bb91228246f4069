"""A Grid that waits for replies without idling: Flower's own, polled sooner.

Flower's deployment grid (``flwr.superlink.grid.http_grid.HttpGrid``, 1.41) pulls replies in
``send_and_receive`` and sleeps a fixed 3 s between pulls, so every phase of every round
ends up to 3 s after its last reply arrived. :class:`PromptGrid` wraps any grid, the way
Flower's strategies wrap one another: every call is the inner grid's, and only the wait is
its own: it pulls after 50 ms, backing off to one pull a second while nothing arrives (a long
local training round is not a stream of empty pulls) and starting over at 50 ms with each
reply.

An HTTP error from Flower's grid (a status Flower's retries give up on, typically from a
SuperLink restarting under the app) comes out as :class:`SuperLinkLostError`: the ServerApp lost its
SuperLink, which is not a failure of the run. The ServerApp then reports nothing; Flower marks
the run failed and the hub resumes it from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator

import httpx
from flwr.app import Message, RecordDict
from flwr.proto.node_pb2 import NodeInfo
from flwr.serverapp import Grid
from flwr.supercore.run import Run

FIRST_WAIT = 0.05  # seconds before the first pull, and after each reply
LONGEST_WAIT = 1.0  # seconds between pulls while nothing arrives
BACKOFF = 1.5


class SuperLinkLostError(Exception):
    """The ServerApp's grid cannot reach its SuperLink any more (no message: the cause is kept
    as ``__cause__`` for the run's log)."""


@contextlib.contextmanager
def _link() -> Iterator[None]:
    try:
        yield
    except httpx.HTTPError as exc:
        raise SuperLinkLostError from exc


class PromptGrid(Grid):
    """Delegate to ``grid``; in :meth:`send_and_receive`, pull replies as they come.

    Parameters
    ----------
    grid
        Flower's grid for the run (what the ServerApp is given).
    first_wait, longest_wait
        The pause before a pull right after sending or a reply, and the longest pause.
    """

    def __init__(
        self, grid: Grid, first_wait: float = FIRST_WAIT, longest_wait: float = LONGEST_WAIT
    ) -> None:
        self.grid = grid
        self.first_wait, self.longest_wait = first_wait, longest_wait

    def set_run(self, run: Run) -> None:
        self.grid.set_run(run)

    @property
    def run(self) -> Run:
        return self.grid.run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return self.grid.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        with _link():
            return list(self.grid.get_node_ids())

    def get_nodes(self) -> Iterable[NodeInfo]:
        with _link():
            return list(self.grid.get_nodes())

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        with _link():
            return list(self.grid.push_messages(messages))

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        with _link():
            return list(self.grid.pull_messages(message_ids))

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Push ``messages``, then pull their replies until all came or ``timeout`` passed
        (None: until all came), as Flower's grid does but without its fixed 3 s sleep."""
        waiting = set(self.push_messages(messages))
        deadline = None if timeout is None else time.monotonic() + timeout
        replies: list[Message] = []
        wait = self.first_wait
        while waiting:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wait = min(wait, left)
            time.sleep(wait)
            arrived = list(self.pull_messages(waiting))
            replies.extend(arrived)
            waiting -= {reply.metadata.reply_to_message_id for reply in arrived}
            wait = self.first_wait if arrived else min(self.longest_wait, wait * BACKOFF)
        return replies
