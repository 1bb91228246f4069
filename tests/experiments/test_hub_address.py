"""A hub address that is not a hub's, or none at all, is said with what to set instead."""

from __future__ import annotations

import httpx
import pytest

from fedpark.experiments.protocol.client import HubClient
from fedpark.experiments.protocol.errors import (
    HubApiError,
    HubUnreachableError,
    InvalidHubUrlError,
)

TOKEN = "fpk_" + "a" * 20


@pytest.mark.parametrize(
    "url", ["http://x/console", "http://x/console/contracts", "http://x/api/v1/", "http://x/health"]
)
def test_a_console_or_api_path_in_fedpark_hub_is_refused_before_anything_is_sent(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDPARK_HUB", url)
    with pytest.raises(InvalidHubUrlError) as refused:
        HubClient(None, TOKEN)
    assert str(refused.value) == (
        f"FEDPARK_HUB={url.rstrip('/')} does not look like a FedPark hub's URL: use the hub's "
        "base URL, e.g. http://x"
    )


def test_the_same_url_given_as_an_option_is_named_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEDPARK_HUB", raising=False)
    with pytest.raises(InvalidHubUrlError) as refused:
        HubClient("https://hub.park.example/console", TOKEN)
    assert str(refused.value) == (
        "the hub URL https://hub.park.example/console does not look like a FedPark hub's URL: "
        "use the hub's base URL, e.g. https://hub.park.example"
    )


@pytest.mark.parametrize("status", [200, 404])
def test_a_web_page_for_an_answer_says_the_url_is_not_a_hubs(
    status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = "<html><body>Welcome to nginx! secret-portal</body></html>"
    monkeypatch.setenv("FEDPARK_HUB", "http://x/park")
    answer = httpx.MockTransport(
        lambda _: httpx.Response(status, text=page, headers={"content-type": "text/html"})
    )
    with HubClient(None, TOKEN, transport=answer) as api, pytest.raises(InvalidHubUrlError) as no:
        api.me()
    assert str(no.value) == (
        "FEDPARK_HUB=http://x/park does not look like a FedPark hub's URL (it answered with a "
        "web page): use the hub's base URL, e.g. http://x"
    )
    with HubClient(None, TOKEN, transport=answer) as api, pytest.raises(InvalidHubUrlError):
        api.health()


def test_a_redirect_says_the_url_is_not_a_hubs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEDPARK_HUB", raising=False)
    moved = httpx.MockTransport(
        lambda _: httpx.Response(303, headers={"location": "http://x/console/sign-in"})
    )
    with (
        HubClient("http://x", TOKEN, transport=moved) as api,
        pytest.raises(InvalidHubUrlError) as no,
    ):
        api.organizations()
    assert str(no.value) == (
        "the hub URL http://x does not look like a FedPark hub's URL (it answered with a "
        "redirect): use the hub's base URL, e.g. http://x"
    )


def test_a_proxys_error_page_is_still_a_server_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 502 page comes from a proxy in front of a hub that is restarting: not a wrong URL."""
    monkeypatch.delenv("FEDPARK_HUB", raising=False)
    down = httpx.MockTransport(
        lambda _: httpx.Response(502, text="<html/>", headers={"content-type": "text/html"})
    )
    with HubClient("http://x", TOKEN, transport=down) as api, pytest.raises(HubApiError) as no:
        api.me()
    assert no.value.status == 502


def _refused(_: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused")


def test_an_unset_fedpark_hub_is_said_when_the_default_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FEDPARK_HUB", raising=False)
    refused = httpx.MockTransport(_refused)
    with HubClient(None, TOKEN, transport=refused) as api, pytest.raises(HubUnreachableError) as no:
        api.me()
    assert str(no.value) == (
        "cannot reach the hub at http://127.0.0.1:8470: connection failed (refused, unknown "
        "host, or TLS not trusted); FEDPARK_HUB is not set; tried http://127.0.0.1:8470: set "
        "it to your hub's URL (export FEDPARK_HUB=https://hub.example.org) or pass --hub"
    )
    monkeypatch.setenv("FEDPARK_HUB", "http://hub.example:8470")
    with HubClient(None, TOKEN, transport=refused) as api, pytest.raises(HubUnreachableError) as no:
        api.health()
    assert str(no.value) == (
        "cannot reach the hub at http://hub.example:8470: connection failed (refused, unknown "
        "host, or TLS not trusted)"
    )
