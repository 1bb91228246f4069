"""The role matrix of every endpoint, and other organizations' objects answering 404."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from harness import Park

pytestmark = pytest.mark.integration

CALLERS = (
    "operator",
    "acme-admin",
    "acme-steward",
    "acme-researcher",
    "acme-factory",
    "acme-partner",
)
Call = Callable[[Park, str], httpx.Response]


def _as(park: Park, who: str) -> httpx.Client:
    return park.hub.client() if who == "anonymous" else park.client(who)


def _throwaway_user(park: Park) -> str:
    with park.client("operator") as admin:
        body = {"username": f"tmp-{uuid.uuid4().hex[:8]}", "org_id": "acme", "role": "partner"}
        return str(admin.post("/users", json=body).json()["id"])


def _own_token(park: Park, who: str) -> str:
    with _as(park, who) as client:
        return str(client.post("/tokens", json={"name": "tmp"}).json().get("id", "none"))


def _new_user_body() -> dict[str, Any]:
    return {"username": f"u-{uuid.uuid4().hex[:8]}", "org_id": "acme", "role": "researcher"}


def _new_org_body() -> dict[str, Any]:
    return {"id": f"org-{uuid.uuid4().hex[:8]}", "name": "New", "kind": "university"}


# (method, path template) -> (how to call it, expected status per caller, anonymous status)
MATRIX: dict[tuple[str, str], tuple[Call, dict[str, int], int]] = {
    ("GET", "/health"): (
        lambda p, w: httpx.get(f"{p.hub.url}/health"),
        dict.fromkeys(CALLERS, 200),
        200,
    ),
    ("GET", "/api/v1/me"): (lambda p, w: _as(p, w).get("/me"), dict.fromkeys(CALLERS, 200), 401),
    ("POST", "/api/v1/organizations"): (
        lambda p, w: _as(p, w).post("/organizations", json=_new_org_body()),
        {**dict.fromkeys(CALLERS, 403), "operator": 201},
        401,
    ),
    ("GET", "/api/v1/organizations"): (
        lambda p, w: _as(p, w).get("/organizations"),
        dict.fromkeys(CALLERS, 200),
        401,
    ),
    ("GET", "/api/v1/organizations/{org_id}"): (
        lambda p, w: _as(p, w).get("/organizations/bravo"),
        dict.fromkeys(CALLERS, 200),
        401,
    ),
    ("POST", "/api/v1/users"): (
        lambda p, w: _as(p, w).post("/users", json=_new_user_body()),
        {**dict.fromkeys(CALLERS, 403), "operator": 201, "acme-admin": 201},
        401,
    ),
    ("GET", "/api/v1/users"): (
        lambda p, w: _as(p, w).get("/users"),
        {**dict.fromkeys(CALLERS, 403), "operator": 200, "acme-admin": 200},
        401,
    ),
    ("GET", "/api/v1/users/{user_id}"): (
        lambda p, w: _as(p, w).get(f"/users/{p.members['acme-steward'].user_id}"),
        {**dict.fromkeys(CALLERS, 404), "operator": 200, "acme-admin": 200, "acme-steward": 200},
        401,
    ),
    ("DELETE", "/api/v1/users/{user_id}"): (
        lambda p, w: _as(p, w).delete(f"/users/{_throwaway_user(p)}"),
        {**dict.fromkeys(CALLERS, 403), "operator": 200, "acme-admin": 200},
        401,
    ),
    ("POST", "/api/v1/tokens"): (
        lambda p, w: _as(p, w).post("/tokens", json={"name": "m"}),
        dict.fromkeys(CALLERS, 201),
        401,
    ),
    ("GET", "/api/v1/tokens"): (
        lambda p, w: _as(p, w).get("/tokens"),
        dict.fromkeys(CALLERS, 200),
        401,
    ),
    ("DELETE", "/api/v1/tokens/{token_id}"): (
        lambda p, w: _as(p, w).delete(f"/tokens/{_own_token(p, w)}"),
        dict.fromkeys(CALLERS, 200),
        401,
    ),
    ("GET", "/api/v1/audit"): (
        lambda p, w: _as(p, w).get("/audit"),
        {**dict.fromkeys(CALLERS, 403), "operator": 200, "acme-admin": 200},
        401,
    ),
    ("GET", "/api/v1/audit/verify"): (
        lambda p, w: _as(p, w).get("/audit/verify"),
        {**dict.fromkeys(CALLERS, 403), "operator": 200},
        401,
    ),
}


def test_matrix_covers_every_endpoint(park: Park) -> None:
    spec = httpx.get(f"{park.hub.url}/openapi.json").json()
    endpoints = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert endpoints == set(MATRIX), "add new endpoints to the role matrix"


@pytest.mark.parametrize("endpoint", sorted(MATRIX), ids=" ".join)
def test_role_matrix(park: Park, endpoint: tuple[str, str]) -> None:
    call, expected, anonymous = MATRIX[endpoint]
    got = {who: call(park, who).status_code for who in CALLERS}
    assert got == expected
    assert call(park, "anonymous").status_code == anonymous


OTHER_ORG: dict[str, Callable[[Park, httpx.Client], httpx.Response]] = {
    "read a user": lambda p, c: c.get(f"/users/{p.members['bravo-factory'].user_id}"),
    "deactivate a user": lambda p, c: c.delete(f"/users/{p.members['bravo-partner'].user_id}"),
    "add a user": lambda p, c: c.post(
        "/users", json={"username": "intruder", "org_id": "bravo", "role": "admin"}
    ),
    "list users": lambda p, c: c.get("/users", params={"org_id": "bravo"}),
    "list a user's tokens": lambda p, c: c.get(
        "/tokens", params={"user_id": p.members["bravo-factory"].user_id}
    ),
    "revoke a token": lambda p, c: c.delete(f"/tokens/{p.members['bravo-factory'].token_id}"),
    "mint a token for them": lambda p, c: c.post(
        "/tokens", json={"name": "x", "user_id": p.members["bravo-factory"].user_id}
    ),
}


@pytest.mark.parametrize("action", sorted(OTHER_ORG))
@pytest.mark.parametrize("who", ["acme-admin", "acme-factory", "acme-steward"])
def test_other_organizations_objects_are_not_found(park: Park, action: str, who: str) -> None:
    with park.client(who) as client:
        response = OTHER_ORG[action](park, client)
    assert response.status_code in (403, 404)
    if who == "acme-admin":  # allowed by role, so only the organization check stops it
        assert response.status_code == 404, response.text
    # The bravo member still works: nothing was changed.
    with park.client("bravo-factory") as bravo:
        assert bravo.get("/me").status_code == 200


def test_org_admin_sees_only_their_organizations_audit(park: Park) -> None:
    with park.client("acme-admin") as admin:
        records = admin.get("/audit", params={"limit": 1000}).json()
    assert records and {r["actor_org"] for r in records} == {"acme"}
