"""A small HTTP client for the hub's API; clients reach the hub only through this.

No message it makes quotes a token, a header or an exception's text: httpx's errors can
carry the request's headers (an illegal header value is quoted whole), so errors here are
built from what FedPark checked itself.
"""

from __future__ import annotations

import os
import re
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from fedpark.clients.errors import (
    HubApiError,
    HubAuthError,
    HubUnreachableError,
    InvalidHubUrlError,
    InvalidTokenError,
)

DEFAULT_HUB = "http://127.0.0.1:8470"
# What an API token may hold: FedPark's tokens are `fpk_` + URL-safe base64.
_TOKEN = re.compile(r"^[A-Za-z0-9_\-.~+/=]{8,512}$")


def check_token(token: str) -> str:
    """``token`` if it has a token's shape; else :class:`InvalidTokenError` saying what is
    wrong with it, never quoting it."""
    if token != token.rstrip("\r\n") or "\n" in token or "\r" in token:
        raise InvalidTokenError(
            "the API token ends with a line ending (read from a file saved with one, or "
            "with Windows CRLF line endings?): remove it"
        )
    if token != token.strip():
        raise InvalidTokenError("the API token has a leading or trailing space: remove it")
    if not _TOKEN.match(token):
        if not token.isascii() or not token.isprintable():
            raise InvalidTokenError("the API token holds characters a token never has")
        if not 8 <= len(token) <= 512:
            raise InvalidTokenError(f"the API token is {len(token)} characters long: not a token")
        raise InvalidTokenError("the API token holds characters a token never has")
    return token


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


def describe_transport_error(exc: httpx.TransportError) -> str:
    """What went wrong on the way to the hub, by the error's kind (its text may quote the
    request's headers)."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.ReadTimeout | httpx.WriteTimeout):
        return "timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out waiting for a connection"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed (refused, unknown host, or TLS not trusted)"
    if isinstance(exc, httpx.LocalProtocolError):
        return "the request could not be sent (a header FedPark cannot send)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server did not answer as an HTTP server"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "the URL's scheme is not http or https"
    return f"network error ({type(exc).__name__})"


class HubClient:
    """Calls ``/api/v1`` with a bearer token and turns problem details into exceptions.

    Parameters
    ----------
    base_url
        The hub, e.g. ``https://hub.park.example``; ``FEDPARK_HUB`` or localhost when None.
    token
        An API token; ``FEDPARK_TOKEN`` when None.
    timeout
        Seconds per request.
    """

    def __init__(
        self, base_url: str | None = None, token: str | None = None, timeout: float = 30.0
    ) -> None:
        self.base_url = check_url(base_url or os.environ.get("FEDPARK_HUB") or DEFAULT_HUB)
        token = token or os.environ.get("FEDPARK_TOKEN")
        headers = {"Authorization": f"Bearer {check_token(token)}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> HubClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("/health") else f"/api/v1{path}"
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.is_error:
            raise _problem(response)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return its decoded JSON (None for an empty answer)."""
        response = self._send(method, path, **kwargs)
        return response.json() if response.content else None

    def request_bytes(self, method: str, path: str, **kwargs: Any) -> bytes:
        """Send a request and return the raw body (downloads)."""
        return self._send(method, path, **kwargs).content

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def health(self) -> dict[str, Any]:
        try:
            response = self._http.get("/health")
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        result: dict[str, Any] = response.json()
        return result

    def _unreachable(self, exc: httpx.TransportError) -> HubUnreachableError:
        return HubUnreachableError(
            f"cannot reach the hub at {self.base_url}: {describe_transport_error(exc)}"
        )


def _problem(response: httpx.Response) -> HubApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    error = HubAuthError if status in (401, 403) else HubApiError
    return error(
        status,
        str(body.get("title") or response.reason_phrase),
        str(body.get("detail") or response.text[:200]),
        body.get("request_id"),
    )
