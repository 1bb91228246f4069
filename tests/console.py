"""Signing a plain HTTP client into the console, as a browser would."""

from __future__ import annotations

import re

import httpx

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def console_client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)


def sign_in(base_url: str, token: str) -> tuple[httpx.Client, httpx.Response]:
    """A client holding a console session, and the sign-in answer (a redirect)."""
    client = console_client(base_url)
    form = client.get("/console/sign-in")
    assert form.status_code == 200, form.text
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    answer = client.post(
        "/console/sign-in",
        data={"token": token, "nonce": nonce.group(1)},
        headers={"Origin": base_url},
    )
    return client, answer


def csrf_of(client: httpx.Client, page: str) -> str:
    """The CSRF token a signed-in page carries in its forms."""
    found = CSRF.search(client.get(page).text)
    assert found is not None, f"no CSRF token on {page}"
    return found.group(1)
