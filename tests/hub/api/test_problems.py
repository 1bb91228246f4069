"""Errors are RFC 9457 problem details a person can act on; OpenAPI declares bearer auth."""

from __future__ import annotations

import pytest
from harness import Park

from fedpark.experiments.protocol.resources.identity import OrgKind


@pytest.fixture(scope="module")
def park(rules_park: Park) -> Park:
    """The hub's rules, in process (see ``rules_park``)."""
    return rules_park


def test_validation_error_names_the_field(park: Park) -> None:
    with park.client("operator") as admin:
        response = admin.post(
            "/organizations", json={"id": "Not A Slug!", "name": "x", "kind": "factory"}
        )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["field"] == "id"
    assert body["detail"] == (
        "id: must be lowercase letters (a-z), digits and dashes, starting and ending with a "
        "letter or digit, e.g. press-sensors"
    )
    assert body["type"] == "urn:fedpark:problem:invalid-input"


def test_every_problem_of_a_request_is_in_its_detail(park: Park) -> None:
    with park.client("operator") as admin:
        response = admin.post("/organizations", json={"id": "Not A Slug!", "kind": "castle"})
    assert response.status_code == 422
    assert response.json()["detail"].split("; ") == [
        "id: must be lowercase letters (a-z), digits and dashes, starting and ending with a "
        "letter or digit, e.g. press-sensors",
        "name: required, but missing",
        "kind: must be one of: " + ", ".join(kind.value for kind in OrgKind),
    ]


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
    spec = park.hub.client().get(f"{park.hub.url}/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/api/v1/me"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/health"]["get"]


def test_invalid_input_is_never_echoed(park: Park) -> None:
    """A 422 names the field and the rule, never what was sent: a declaration's profile holds
    a factory's category names, and a value may be anything a caller did not mean to repeat."""
    from harness import contract_in_state
    from samples import sensor_table

    from fedpark.contracts import Contract, validate_table

    sentinel = "SENTINEL-ECHO-m2Lp"
    data = contract_in_state(park, "approved")
    result = validate_table(Contract.model_validate(data), sensor_table(rows=50))
    profile = result.profile.model_dump(mode="json")
    profile["columns"][1]["categories"] = {f"{sentinel}-category": -5}  # a negative count
    report = result.report.model_dump(mode="json") | {"format": f"{sentinel}-format" * 3}
    path = f"/contracts/{data['id']}/versions/{data['version']}/datasets"
    bodies = [
        {"name": "line", "report": report, "profile": profile},
        {"name": "line", "report": result.report.model_dump(mode="json"), "profile": profile},
        {"name": f"{sentinel}\u0000", "report": {f"{sentinel}-key": 1}, "profile": {}},
    ]
    with park.client("acme-factory") as factory:
        answers = [factory.post(path, json=body) for body in bodies]
        answers.append(factory.get("/datasets", params={"limit": sentinel}))
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert sentinel not in answer.text, answer.text
    fields = [e["field"] for e in answers[1].json()["errors"]]
    assert "profile.columns.1.categories.*" in fields, fields
