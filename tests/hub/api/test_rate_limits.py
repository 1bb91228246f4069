"""429 with Retry-After: failed authentications per address, requests per token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from console import sign_in
from harness import HubProcess, hub_env

from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration


@pytest.fixture
def strict_hub(s3_server: EmbeddedS3, tmp_path: Path) -> Iterator[HubProcess]:
    env = hub_env(
        s3_server,
        FEDPARK_AUTH_FAILURES_PER_MINUTE="5",
        FEDPARK_REQUESTS_PER_TOKEN_PER_MINUTE="40",
    )
    hub = HubProcess(tmp_path / "hub", env).start()
    yield hub
    hub.stop()


def test_wrong_tokens_get_429_after_the_limit_also_in_the_console(
    strict_hub: HubProcess,
) -> None:
    with strict_hub.client("fpk_guess") as guesser:
        answers = [guesser.get("/me").status_code for _ in range(7)]
    assert answers == [401] * 5 + [429] * 2
    with strict_hub.client("fpk_guess") as guesser:
        refused = guesser.get("/me")
    assert refused.headers["retry-after"].isdigit()
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["type"] == "urn:fedpark:problem:too-many-requests"
    # The console's sign-in form counts against the same address.
    _, answer = sign_in(strict_hub.url, "fpk_another-guess")
    assert answer.status_code == 429 and "too many failed authentications" in answer.text


def test_one_token_is_limited_per_minute_and_others_are_not(strict_hub: HubProcess) -> None:
    admin = strict_hub.admin_token
    with strict_hub.client(admin) as client:
        other = client.post("/tokens", json={"name": "second"}).json()["token"]
        codes = [client.get("/me").status_code for _ in range(45)]
    assert codes.count(200) == 39 and set(codes[39:]) == {429}  # 40 with the POST above
    with strict_hub.client(other) as client:
        assert client.get("/me").status_code == 200
    assert httpx.get(f"{strict_hub.url}/health").status_code == 200  # no token: not counted
