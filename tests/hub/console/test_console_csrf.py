"""Every form the console accepts is CSRF-checked: the list of POST routes comes from the
console's own routers (a new form cannot be forgotten), and each one, posted with a valid
session but no token, or with the token from another origin, is refused with 403. Sign-in
sends people only to console pages of this hub."""

from __future__ import annotations

import re

import pytest
from console import console_client, csrf_of, sign_in
from fastapi.routing import APIRoute
from harness import Park

from fedpark.hub.console.routes import admin, auth, contracts, experiments, factory, models

pytestmark = pytest.mark.integration

UNCHECKED = {"/console/sign-in"}  # login CSRF is its form nonce (test_console_session.py)


def _post_routes() -> list[str]:
    paths = []
    for module in (auth, contracts, experiments, models, factory, admin):
        for route in module.router.routes:
            if isinstance(route, APIRoute) and "POST" in route.methods:
                paths.append("/console" + route.path)
    return sorted(paths)


POSTS = _post_routes()


def test_the_route_list_is_the_console_s_forms() -> None:
    assert len(POSTS) >= 11 and "/console/experiments/new" in POSTS


@pytest.mark.parametrize("path", [p for p in POSTS if p not in UNCHECKED])
def test_every_console_form_refuses_a_missing_or_foreign_csrf_token(park: Park, path: str) -> None:
    target = re.sub(r"\{[^}]+\}", "x1", path)  # the check comes before any lookup
    client, _ = sign_in(park.hub.url, park.operator.token)
    try:
        token = csrf_of(client, "/console/admin")
        missing = client.post(target, data={}, headers={"Origin": park.hub.url})
        foreign = client.post(
            target, data={"csrf": token}, headers={"Origin": "https://evil.example"}
        )
        wrong = client.post(target, data={"csrf": "0" * 64}, headers={"Origin": park.hub.url})
    finally:
        client.close()
    for answer in (missing, foreign, wrong):
        assert answer.status_code == 403, (path, answer.status_code)
        assert "reload the page" in answer.text


@pytest.mark.parametrize(
    ("target", "lands"),
    [
        ("//evil.example/console/x", "/console/contracts"),  # the researcher's home
        ("https://evil.example/console/x", "/console/contracts"),  # the researcher's home
        ("/console//evil.example", "/console/contracts"),  # the researcher's home
        ("/console/..\\evil", "/console/contracts"),  # the researcher's home
        ("/console/models", "/console/models"),
    ],
)
def test_sign_in_sends_people_only_to_this_hubs_console(
    park: Park, target: str, lands: str
) -> None:
    with console_client(park.hub.url) as client:
        form = client.get("/console/sign-in", params={"next": target})
        assert "evil.example" not in form.text
        nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
        assert nonce is not None
        answer = client.post(
            "/console/sign-in",
            data={
                "token": park.members["acme-researcher"].token,
                "nonce": nonce.group(1),
                "next": target,
            },
            headers={"Origin": park.hub.url},
        )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == lands
