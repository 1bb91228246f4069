"""A corpus of malformed requests: each gets a clear 4xx problem, none a 5xx, and the hub
keeps serving (nothing half-written: the objects they aimed at do not exist afterwards)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from harness import Park, contract_in_state, new_contract
from samples import sensor_table

from fedpark.contracts import Contract, validate_table


@pytest.fixture(scope="module")
def park(rules_park: Park) -> Park:
    """The hub's rules, in process (see ``rules_park``)."""
    return rules_park


JSON = "application/json"


def _contract(**changes: Any) -> dict[str, Any]:
    return new_contract("acme", **changes)


def _column(**changes: Any) -> dict[str, Any]:
    return {"name": "x", "type": "float64", **changes}


def _declaration(data: dict[str, Any], **profile_changes: Any) -> dict[str, Any]:
    contract = Contract.model_validate(data)
    result = validate_table(contract, sensor_table(rows=50))
    profile = result.profile.model_dump(mode="json") | profile_changes
    return {"name": "line", "report": result.report.model_dump(mode="json"), "profile": profile}


def bodies() -> Iterator[tuple[str, str, str, bytes, str]]:
    """(case, method, path, body, content type)."""
    for name, raw in {
        "empty body": b"",
        "truncated JSON": b'{"id": "x", "columns": [',
        "not UTF-8": b'{"id": "\xff\xfe"}',
        "JSON null": b"null",
        "JSON list": b"[]",
        "JSON number": b"123",
        "deeply nested arrays": b"[" * 100_000 + b"]" * 100_000,
        "deeply nested objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "NaN literal": b'{"id": NaN}',
        "Infinity literal": b'{"rows": {"min_rows": Infinity}}',
        "binary garbage": bytes(range(256)) * 40,
    }.items():
        yield name, "POST", "/contracts", raw, JSON
    contract_cases: dict[str, dict[str, Any]] = {
        "huge title": _contract(title="t" * 1_000_000),
        "NUL in id": _contract(id="a\u0000b"),
        "id not a slug": _contract(id="../../etc/passwd"),
        "version not semver": _contract(version="1.0"),
        "columns not a list": _contract(columns="x"),
        "no columns": _contract(columns=[]),
        "20 000 columns": _contract(columns=[_column(name=f"c{i}") for i in range(20_000)]),
        "duplicate column": _contract(columns=[_column(), _column()]),
        "unknown Arrow type": _contract(columns=[_column(type="float128")]),
        "nested type too deep": _contract(
            columns=[_column(type="list<" * 200 + "int8" + ">" * 200)]
        ),
        "min above max": _contract(columns=[_column(rules={"min": 5, "max": 1})]),
        "rule of the wrong type": _contract(columns=[_column(rules={"min": "cold"})]),
        "regex that does not compile": _contract(
            columns=[_column(type="string", rules={"regex": "(["})]
        ),
        "catastrophic regex": _contract(
            columns=[_column(type="string", rules={"regex": "(a+)+$" * 200})]
        ),
        "100 000 allowed values": _contract(
            columns=[_column(type="int64", rules={"allowed_values": list(range(100_000))})]
        ),
        "unknown field": _contract(surprise=True),
        "huge number": _contract(columns=[_column(rules={"max": 10**400})]),
    }
    for name, body in contract_cases.items():
        yield name, "POST", "/contracts", json.dumps(body).encode(), JSON
    yield (
        "form instead of JSON",
        "POST",
        "/contracts",
        b"id=x&version=1",
        ("application/x-www-form-urlencoded"),
    )
    yield "XML", "POST", "/contracts", b"<contract/>", "application/xml"
    for name, body in {
        "username with spaces": {"username": "a b", "org_id": "acme", "role": "factory"},
        "unknown role": {"username": "abc", "org_id": "acme", "role": "god"},
    }.items():
        yield name, "POST", "/users", json.dumps(body).encode(), JSON
    yield (
        "token for 10^6 days",
        "POST",
        "/tokens",
        b'{"name": "x", "expires_in_days": 1000000}',
        JSON,
    )


CASES = list(bodies())


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "media"), CASES, ids=[c[0] for c in CASES]
)
def test_malformed_request_gets_a_clear_4xx(
    park: Park, case: str, method: str, path: str, body: bytes, media: str
) -> None:
    with park.client("acme-researcher" if path == "/experiments" else "acme-factory") as c:
        if path == "/users":
            c = park.client("acme-admin")
        answer = c.request(method, path, content=body, headers={"Content-Type": media})
    assert 400 <= answer.status_code < 500, (case, answer.status_code, answer.text[:500])
    problem = answer.json()
    assert problem["detail"] and problem["status"] == answer.status_code, problem
    assert answer.headers["content-type"] == "application/problem+json"
    with park.client("acme-factory") as c:  # the hub is still there
        assert c.get("/me").status_code == 200


# Launch bodies that break the schema -> the field the answer must name. They are sent on a
# real approved contract: a handler that skipped validation would get further than a 404.
LAUNCHES: dict[str, tuple[dict[str, object], str]] = {
    "NaN learning rate": ({"train": {"learning_rate": "NaN"}}, "train.learning_rate"),
    "negative rounds": ({"rounds": -1}, "rounds"),
    "10^9 rounds": ({"rounds": 10**9}, "rounds"),
    "huge hidden layer": ({"model": {"hidden": [10**9]}}, "model"),
    "unknown strategy": ({"strategy": "magic"}, "strategy"),
    "scaffold with differential privacy": (
        {"strategy": "scaffold", "strategy_params": {"noise_multiplier": 1, "clipping_norm": 1}},
        "body",
    ),
    "participants not a list": ({"participants": "acme"}, "participants"),
    "10 000 participants": ({"participants": [f"f{i}" for i in range(10_000)]}, "participants"),
    "k above the participants": ({"min_factories": 3}, "body"),
}


@pytest.fixture(scope="module")
def approved(park: Park) -> dict[str, object]:
    return contract_in_state(park, "approved")


@pytest.mark.parametrize("case", sorted(LAUNCHES))
def test_malformed_launch_is_a_422_naming_the_field(
    park: Park, approved: dict[str, object], case: str
) -> None:
    changes, field = LAUNCHES[case]
    body = {
        "name": f"malformed {case}",
        "contract_id": approved["id"],
        "contract_version": approved["version"],
        "participants": ["acme", "bravo"],
    } | changes
    with park.client("acme-researcher") as researcher:
        before = researcher.get("/experiments", params={"limit": 500}).json()
        answer = researcher.post("/experiments", json=body)
        after = researcher.get("/experiments", params={"limit": 500}).json()
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"].startswith(field), answer.json()
    assert len(after) == len(before)  # nothing half-written


def test_corpus_size() -> None:
    assert len(CASES) + len(LAUNCHES) + len(DECLARATIONS) >= 45, len(CASES)


# Declarations: well-formed JSON around a profile that cannot be true.
DECLARATIONS: dict[str, dict[str, Any]] = {
    "rows not a number": {"rows": "many"},
    "negative rows": {"rows": -5},
    "null fraction above 1": {
        "columns": [{"name": "temp", "null_fraction": 3.0}],
    },
    "10 000 profiled columns": {
        "columns": [{"name": f"c{i}", "null_fraction": 0} for i in range(10_000)]
    },
    "k of zero": {"k": 0},
}


@pytest.mark.parametrize("case", sorted(DECLARATIONS))
def test_malformed_declaration_gets_a_clear_4xx(park: Park, case: str) -> None:
    data = contract_in_state(park, "approved")
    body = _declaration(data, **DECLARATIONS[case])
    path = f"/contracts/{data['id']}/versions/{data['version']}/datasets"
    with park.client("acme-factory") as factory:
        answer = factory.post(path, json=body)
        assert 400 <= answer.status_code < 500, (case, answer.status_code, answer.text[:300])
        assert factory.get(path).json() == []  # nothing was declared
