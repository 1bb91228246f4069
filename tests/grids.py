"""An in-process Flower grid for tests of strategies: Flower's own ``Strategy.start`` loop
with factories that are functions (each answers a message, or never does)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flwr.app import Message
from flwr.serverapp import Grid

Answer = Callable[[Message], Message | None]


class Grid4Tests(Grid):
    """A grid of in-process factories: each answers a message, or never does (None)."""

    def __init__(self, factories: dict[int, Answer]) -> None:
        self.factories = factories
        self.sent: list[Message] = []

    def set_run(self, run):  # type: ignore[no-untyped-def]
        pass

    def run(self):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def create_message(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def get_node_ids(self) -> Iterable[int]:
        return list(self.factories)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        raise NotImplementedError

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        raise NotImplementedError

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        replies = []
        for message in messages:
            self.sent.append(message)
            reply = self.factories[message.metadata.dst_node_id](message)
            if reply is not None:
                replies.append(reply)
        return replies
