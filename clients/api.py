"""A small HTTP client for the hub's API; clients reach the hub only through this."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

import httpx

from fedpark.clients.errors import HubApiError, HubAuthError, HubUnreachableError

DEFAULT_HUB = "http://127.0.0.1:8470"


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
        self.base_url = (base_url or os.environ.get("FEDPARK_HUB") or DEFAULT_HUB).rstrip("/")
        token = token or os.environ.get("FEDPARK_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
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
            raise HubUnreachableError(f"cannot reach the hub at {self.base_url}: {exc}") from None
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
            raise HubUnreachableError(f"cannot reach the hub at {self.base_url}: {exc}") from None
        result: dict[str, Any] = response.json()
        return result


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
