"""Rate limits on token use: failed authentications per client address, requests per token.

Counters live in the hub process (a sliding window of timestamps per key); several hub
replicas each count their own share, which still bounds guessing to a small multiple. Keys are
an address or a token id, never a secret.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from fedpark.hub.errors import TooManyRequestsError


class SlidingWindow:
    """At most ``limit`` events per key within ``window`` seconds (thread-safe).

    Parameters
    ----------
    limit
        Events allowed per window; 0 turns the limit off.
    window
        The window in seconds.
    max_keys
        Keys remembered at most; the least recently seen are forgotten first, so a flood of
        addresses cannot grow memory without bound.
    """

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window, self.max_keys, self.clock = limit, window, max_keys, clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        self._events.move_to_end(key)
        while events and events[0] <= now - self.window:
            events.popleft()
        while len(self._events) > self.max_keys:
            self._events.popitem(last=False)
        return events

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may act again, or None when it may act now."""
        if self.limit <= 0:
            return None
        with self._lock:
            now = self.clock()
            events = self._recent(key, now)
            if len(events) < self.limit:
                return None
            return max(events[0] + self.window - now, 0.001)

    def record(self, key: str) -> None:
        if self.limit <= 0:
            return
        with self._lock:
            now = self.clock()
            self._recent(key, now).append(now)


class Throttle:
    """The hub's two limits: failed authentications per address, requests per token."""

    def __init__(self, failures_per_minute: int, requests_per_minute: int) -> None:
        self.failures = SlidingWindow(failures_per_minute)
        self.requests = SlidingWindow(requests_per_minute)

    def check_address(self, address: str) -> None:
        """Refuse an address that failed to authenticate too often (429), before checking."""
        wait = self.failures.retry_after(address)
        if wait is not None:
            raise TooManyRequestsError(
                f"too many failed authentications from {address}: retry in {wait:.0f} s",
                retry_after=wait,
            )

    def failed(self, address: str) -> None:
        self.failures.record(address)

    def use_token(self, token_id: str) -> None:
        """Count a request made with a token; 429 above the per-token rate."""
        wait = self.requests.retry_after(token_id)
        if wait is not None:
            raise TooManyRequestsError(
                f"too many requests with this token: retry in {wait:.0f} s", retry_after=wait
            )
        self.requests.record(token_id)
