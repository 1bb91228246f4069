"""The sliding windows behind the hub's 429s, on a fake clock."""

from __future__ import annotations

import pytest

from fedpark.hub.errors import TooManyRequestsError
from fedpark.hub.services.throttle import SlidingWindow, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_allows_the_limit_then_says_how_long_to_wait() -> None:
    clock = Clock()
    window = SlidingWindow(3, window=60, clock=clock)
    for _ in range(3):
        assert window.retry_after("a") is None
        window.record("a")
        clock.now += 10
    assert window.retry_after("a") == pytest.approx(30)  # the first event leaves at 1060
    assert window.retry_after("b") is None  # keys count separately
    clock.now += 30
    assert window.retry_after("a") is None


def test_window_forgets_the_least_recent_keys_beyond_its_bound() -> None:
    window = SlidingWindow(1, max_keys=100)
    for i in range(1000):
        window.record(f"10.0.{i // 256}.{i % 256}")
    assert len(window._events) == 100
    assert window.retry_after("10.0.3.231") is not None  # the newest are kept


def test_zero_turns_a_limit_off() -> None:
    window = SlidingWindow(0)
    for _ in range(1000):
        window.record("a")
    assert window.retry_after("a") is None


def test_throttle_refuses_an_address_after_its_failures_and_a_busy_token() -> None:
    throttle = Throttle(failures_per_minute=2, requests_per_minute=2)
    throttle.check_address("10.1.1.1")
    throttle.failed("10.1.1.1")
    throttle.failed("10.1.1.1")
    with pytest.raises(TooManyRequestsError, match="failed authentications") as refused:
        throttle.check_address("10.1.1.1")
    assert 59 < refused.value.retry_after <= 60
    throttle.check_address("10.1.1.2")
    throttle.use_token("t1")
    throttle.use_token("t1")
    with pytest.raises(TooManyRequestsError, match="this token"):
        throttle.use_token("t1")
