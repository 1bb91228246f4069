"""Errors are RFC 9457 problem details a person can act on; OpenAPI declares bearer auth."""

from __future__ import annotations

import httpx
import pytest
from harness import Park

pytestmark = pytest.mark.integration


def test_validation_error_names_the_field(park: Park) -> None:
    with park.client("operator") as admin:
        response = admin.post(
            "/organizations", json={"id": "Not A Slug!", "name": "x", "kind": "factory"}
        )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["field"] == "id"
    assert body["detail"].startswith("id: String should match pattern")
    assert body["type"] == "urn:fedpark:problem:invalid-input"


def test_unknown_field_and_unknown_enum_are_refused(park: Park) -> None:
    with park.client("operator") as admin:
        extra = admin.post(
            "/organizations", json={"id": "ok-id", "name": "x", "kind": "factory", "evil": 1}
        )
        kind = admin.post("/organizations", json={"id": "ok-id", "name": "x", "kind": "castle"})
    assert extra.status_code == 422 and extra.json()["field"] == "evil"
    assert kind.status_code == 422 and kind.json()["field"] == "kind"


def test_unknown_ids_and_routes_are_404_problems(park: Park) -> None:
    with park.client("operator") as admin:
        org = admin.get("/organizations/no-such-org")
        token = admin.delete("/tokens/deadbeef")
        route = admin.get("/no/such/route")
    for response in (org, token, route):
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
    assert org.json()["detail"] == "no organization 'no-such-org'"


def test_duplicates_are_conflicts(park: Park) -> None:
    with park.client("operator") as admin:
        response = admin.post("/organizations", json={"id": "acme", "name": "x", "kind": "other"})
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


def test_openapi_declares_bearer_auth(park: Park) -> None:
    spec = httpx.get(f"{park.hub.url}/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/api/v1/me"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/health"]["get"]
