"""Which hub a client talks to, and what to say when that address is not a hub's.

The address comes from ``--hub``, from ``FEDPARK_HUB`` or, with neither, is the local
default; a message about it names where it came from, so that a person knows what to change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from fedpark.experiments.protocol.errors import InvalidHubUrlError

DEFAULT_HUB = "http://127.0.0.1:8470"
ENV = "FEDPARK_HUB"
# Paths of a hub that people copy from the browser instead of its base URL.
_NOT_BASE = ("/console", "/api/v1", "/health", "/docs")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def check_url(url: str) -> str:
    """``url`` without a trailing slash, if it is an http(s) URL with no credentials in it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidHubUrlError(
            "the hub's URL must look like https://hub.example.org (http or https, a host)"
        )
    if parts.username or parts.password:
        raise InvalidHubUrlError(
            "the hub's URL holds a user name or password: use an API token (FEDPARK_TOKEN)"
        )
    return url.strip().rstrip("/")


@dataclass(frozen=True)
class HubAddress:
    """``url``: the hub's base URL; ``named``: it as a person set it
    (``FEDPARK_HUB=https://...``); ``default``: neither ``--hub`` nor the variable was set."""

    url: str
    named: str
    default: bool = False

    @classmethod
    def resolve(cls, base_url: str | None) -> HubAddress:
        """The address to use; :class:`InvalidHubUrlError` if it cannot be a hub's base URL
        (a console or API path copied from the browser)."""
        env = os.environ.get(ENV)
        if not base_url and not env:
            return cls(DEFAULT_HUB, f"{ENV} (not set)", default=True)
        chosen = base_url or env or DEFAULT_HUB
        url = check_url(chosen)
        named = f"{ENV}={url}" if chosen == env else f"the hub URL {url}"
        address = cls(url, named)
        path = urlsplit(url).path.rstrip("/")
        for suffix in _NOT_BASE:
            if path.endswith(suffix) or f"{suffix}/" in path:
                raise InvalidHubUrlError(address.not_a_hub())
        return address

    def base(self) -> str:
        """The URL's scheme and host: what a hub's base URL most likely is."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def not_a_hub(self, why: str = "") -> str:
        return (
            f"{self.named} does not look like a FedPark hub's URL{why}: use the hub's base "
            f"URL, e.g. {self.base()}"
        )

    def unreachable(self, what: str) -> str:
        """Why the hub could not be reached, and where to set its address if it was not."""
        said = f"cannot reach the hub at {self.url}: {what}"
        if self.default:
            said += (
                f"; {ENV} is not set; tried {DEFAULT_HUB}: set it to your hub's URL "
                f"(export {ENV}=https://hub.example.org) or pass --hub"
            )
        return said

    def check_answer(self, status: int, content_type: str) -> None:
        """:class:`InvalidHubUrlError` for an answer no hub's API gives: a web page or a
        redirect (a console, a sign-in proxy, a web server at that address). A server error
        page is left to the retries: a proxy in front of a restarting hub sends one."""
        if status >= 500:
            return
        if status in _REDIRECTS:
            raise InvalidHubUrlError(self.not_a_hub(" (it answered with a redirect)"))
        kind = content_type.split(";")[0].strip().lower()
        if kind in ("text/html", "application/xhtml+xml"):
            raise InvalidHubUrlError(self.not_a_hub(" (it answered with a web page)"))
