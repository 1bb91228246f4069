"""The role matrix of every endpoint, and other organizations' objects answering 404."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from harness import CALLERS, Park, contract_in_state, new_contract
from samples import sensor_table

from fedpark.contracts import Contract, validate_table


@pytest.fixture(scope="module")
def park(rules_park: Park) -> Park:
    """The hub's rules, in process (see ``rules_park``)."""
    return rules_park


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
        lambda p, w: p.hub.client().get(f"{p.hub.url}/health"),
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


AUTHORS = {"acme-steward", "acme-researcher", "acme-factory"}
STEWARD_ONLY = {**dict.fromkeys(CALLERS, 403), "acme-steward": 200}


def _version(data: dict[str, Any]) -> str:
    return f"/contracts/{data['id']}/versions/{data['version']}"


def _in_state(state: str) -> Call:
    """Call ``/contracts/.../ACTION`` on a fresh contract in ``state``."""

    def call(p: Park, w: str, action: str = "") -> httpx.Response:
        data = contract_in_state(p, state)
        return _as(p, w).post(f"{_version(data)}/{action}")

    return call


def _approved(p: Park) -> dict[str, Any]:
    if not hasattr(p, "approved"):
        p.approved = contract_in_state(p, "approved")  # type: ignore[attr-defined]
    return p.approved  # type: ignore[attr-defined,no-any-return]


def _declare(p: Park, w: str) -> httpx.Response:
    data = _approved(p)
    result = validate_table(Contract.model_validate(data), sensor_table(rows=200))
    body = {
        "name": f"d-{uuid.uuid4().hex[:6]}",
        "report": result.report.model_dump(mode="json"),
        "profile": result.profile.model_dump(mode="json"),
    }
    return _as(p, w).post(f"{_version(data)}/datasets", json=body)


def _draft_update(p: Park, w: str) -> httpx.Response:
    data = contract_in_state(p, "draft")
    return _as(p, w).put(_version(data), json={**data, "title": "Edited"})


VERSION = "/api/v1/contracts/{contract_id}/versions/{version}"
MATRIX.update(
    {
        ("POST", "/api/v1/contracts"): (
            lambda p, w: _as(p, w).post(
                "/contracts",
                json=new_contract(owner=p.operator.org_id if w == "operator" else "acme"),
            ),
            {**dict.fromkeys(CALLERS, 403), **dict.fromkeys(AUTHORS, 201)},
            401,
        ),
        ("GET", "/api/v1/contracts"): (
            lambda p, w: _as(p, w).get("/contracts"),
            dict.fromkeys(CALLERS, 200),
            401,
        ),
        ("GET", "/api/v1/contracts/{contract_id}/versions"): (
            lambda p, w: _as(p, w).get(f"/contracts/{_approved(p)['id']}/versions"),
            dict.fromkeys(CALLERS, 200),
            401,
        ),
        ("GET", VERSION): (
            lambda p, w: _as(p, w).get(_version(_approved(p))),
            dict.fromkeys(CALLERS, 200),
            401,
        ),
        ("PUT", VERSION): (
            _draft_update,
            {**dict.fromkeys(CALLERS, 403), **dict.fromkeys(AUTHORS, 200)},
            401,
        ),
        ("POST", VERSION + "/submit"): (
            lambda p, w: _in_state("draft")(p, w, "submit"),  # type: ignore[call-arg]
            {**dict.fromkeys(CALLERS, 403), **dict.fromkeys(AUTHORS, 200)},
            401,
        ),
        ("POST", VERSION + "/approve"): (
            lambda p, w: _in_state("submitted")(p, w, "approve"),  # type: ignore[call-arg]
            STEWARD_ONLY,
            401,
        ),
        ("POST", VERSION + "/reject"): (
            lambda p, w: _as(p, w).post(
                f"{_version(contract_in_state(p, 'submitted'))}/reject", json={"reason": "not yet"}
            ),
            STEWARD_ONLY,
            401,
        ),
        ("POST", VERSION + "/deprecate"): (
            lambda p, w: _in_state("approved")(p, w, "deprecate"),  # type: ignore[call-arg]
            STEWARD_ONLY,
            401,
        ),
        ("POST", VERSION + "/retire"): (
            lambda p, w: _in_state("deprecated")(p, w, "retire"),  # type: ignore[call-arg]
            STEWARD_ONLY,
            401,
        ),
        ("GET", VERSION + "/document"): (
            lambda p, w: _as(p, w).get(f"{_version(_approved(p))}/document"),
            dict.fromkeys(CALLERS, 200),
            401,
        ),
        ("GET", VERSION + "/schema"): (
            lambda p, w: _as(p, w).get(f"{_version(_approved(p))}/schema"),
            dict.fromkeys(CALLERS, 200),
            401,
        ),
        ("GET", VERSION + "/signature"): (
            lambda p, w: _as(p, w).get(f"{_version(_approved(p))}/signature"),
            dict.fromkeys(CALLERS, 200),
            401,
        ),
        ("POST", VERSION + "/datasets"): (
            _declare,
            {**dict.fromkeys(CALLERS, 403), "acme-factory": 201},
            401,
        ),
        ("GET", VERSION + "/datasets"): (
            lambda p, w: _as(p, w).get(f"{_version(_approved(p))}/datasets"),
            {
                **dict.fromkeys(CALLERS, 403),
                "operator": 200,
                "acme-steward": 200,
                "acme-researcher": 200,
                "acme-factory": 200,
            },
            401,
        ),
        ("GET", "/api/v1/keys/hub"): (
            lambda p, w: _as(p, w).get("/keys/hub"),
            dict.fromkeys(CALLERS, 200),
            401,
        ),
    }
)

# On a missing experiment every caller gets 404: these rows keep every endpoint in the matrix
# and check anonymous callers and run tokens; who sees and does what to real experiments and
# models is test_access_experiments.py.
NO_EXPERIMENT = "exp-000000000000"
EXP = "/api/v1/experiments/{experiment_id}"
RUN = "/api/v1/runs/{experiment_id}"
MODEL = "/api/v1/models/{experiment_id}"
FAKE_RUN = {"Authorization": "Bearer fprun_not-a-run-token"}


def _launch(p: Park, w: str) -> httpx.Response:
    data = _approved(p)
    body = {
        "name": "m",
        "contract_id": data["id"],
        "contract_version": data["version"],
        "participants": ["nobody-declared"],
        "min_factories": 1,
    }
    return _as(p, w).post("/experiments", json=body)


def _run_call(method: str, path: str, **kwargs: Any) -> Call:
    """Run endpoints take only a run token: every user's API token and none at all get 401
    (an unknown run token too: ``test_run_endpoints_refuse_an_unknown_run_token``)."""
    return lambda p, w: _as(p, w).request(method, path, **kwargs)


def _model_part(part: str) -> Call:
    return lambda p, w: _as(p, w).get(f"/models/{NO_EXPERIMENT}/{part}")


MATRIX.update(
    {
        ("POST", "/api/v1/experiments"): (
            _launch,
            {**dict.fromkeys(CALLERS, 403), "acme-researcher": 422},
            401,
        ),
        ("GET", "/api/v1/experiments"): (
            lambda p, w: _as(p, w).get("/experiments"),
            dict.fromkeys(CALLERS, 200),
            401,
        ),
        ("GET", EXP): (
            lambda p, w: _as(p, w).get(f"/experiments/{NO_EXPERIMENT}"),
            dict.fromkeys(CALLERS, 404),
            401,
        ),
        ("GET", EXP + "/rounds"): (
            lambda p, w: _as(p, w).get(f"/experiments/{NO_EXPERIMENT}/rounds"),
            dict.fromkeys(CALLERS, 404),
            401,
        ),
        ("POST", EXP + "/stop"): (
            lambda p, w: _as(p, w).post(f"/experiments/{NO_EXPERIMENT}/stop"),
            dict.fromkeys(CALLERS, 404),
            401,
        ),
        ("PUT", RUN + "/rounds/{number}/checkpoint"): (
            _run_call("PUT", f"/runs/{NO_EXPERIMENT}/rounds/1/checkpoint", content=b"x"),
            dict.fromkeys(CALLERS, 401),
            401,
        ),
        ("GET", RUN + "/rounds/{number}/checkpoint"): (
            _run_call("GET", f"/runs/{NO_EXPERIMENT}/rounds/1/checkpoint"),
            dict.fromkeys(CALLERS, 401),
            401,
        ),
        ("POST", RUN + "/rounds"): (
            _run_call("POST", f"/runs/{NO_EXPERIMENT}/rounds", json={"round": 1}),
            dict.fromkeys(CALLERS, 401),
            401,
        ),
        ("PUT", RUN + "/model"): (
            _run_call("PUT", f"/runs/{NO_EXPERIMENT}/model", content=b"x"),
            dict.fromkeys(CALLERS, 401),
            401,
        ),
        ("POST", RUN + "/finish"): (
            _run_call("POST", f"/runs/{NO_EXPERIMENT}/finish", json={}),
            dict.fromkeys(CALLERS, 401),
            401,
        ),
        ("POST", RUN + "/fail"): (
            _run_call("POST", f"/runs/{NO_EXPERIMENT}/fail", json={"reason": "x"}),
            dict.fromkeys(CALLERS, 401),
            401,
        ),
        ("GET", MODEL): (
            lambda p, w: _as(p, w).get(f"/models/{NO_EXPERIMENT}"),
            dict.fromkeys(CALLERS, 404),
            401,
        ),
        **{
            ("GET", f"{MODEL}/{part}"): (
                _model_part(part),
                dict.fromkeys(CALLERS, 404),
                401,
            )
            for part in ("weights", "manifest", "signature")
        },
    }
)


MATRIX[("GET", "/api/v1/models")] = (
    lambda p, w: _as(p, w).get("/models"),
    dict.fromkeys(CALLERS, 200),
    401,
)
MATRIX[("GET", "/api/v1/datasets")] = (
    lambda p, w: _as(p, w).get("/datasets"),
    {**dict.fromkeys(CALLERS, 403), "operator": 200, "acme-admin": 200, "acme-factory": 200},
    401,
)


def _node_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = ec.generate_private_key(ec.SECP384R1()).public_key()
    return public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


MATRIX[("POST", "/api/v1/federation/nodes")] = (
    # The session hub has no SuperLink: a factory passes the checks and gets 503.
    lambda p, w: _as(p, w).post("/federation/nodes", json={"public_key": _node_key()}),
    {**dict.fromkeys(CALLERS, 403), "acme-factory": 503},
    401,
)
MATRIX[("GET", "/api/v1/federation")] = (
    # The session hub has no SuperLink: a factory passes the role check and gets 503.
    lambda p, w: _as(p, w).get("/federation"),
    {**dict.fromkeys(CALLERS, 403), "acme-factory": 503},
    401,
)


def test_matrix_covers_every_endpoint(park: Park) -> None:
    spec = park.hub.client().get(f"{park.hub.url}/openapi.json").json()
    endpoints = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert endpoints == set(MATRIX), "add new endpoints to the role matrix"


@pytest.mark.parametrize("endpoint", sorted(e for e in MATRIX if e[1].startswith(RUN)))
def test_run_endpoints_refuse_an_unknown_run_token(park: Park, endpoint: tuple[str, str]) -> None:
    method, template = endpoint
    path = template.replace("{experiment_id}", NO_EXPERIMENT).replace("{number}", "1")
    answer = park.hub.client().request(method, park.hub.url + path, headers=FAKE_RUN, content=b"{}")
    assert answer.status_code == 401, answer.text


@pytest.mark.integration  # every endpoint by every caller: a sweep (8 s in process)
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
    """Each organization's admin makes a record of their own first: the test stands alone."""
    ids = {}
    for org in ("acme", "bravo"):
        request_id = f"req-{org}-{uuid.uuid4().hex[:12]}"
        with park.client(f"{org}-admin") as admin:
            made = admin.post(
                "/users",
                json={"username": f"aud-{uuid.uuid4().hex[:8]}", "org_id": org, "role": "partner"},
                headers={"X-Request-ID": request_id},
            )
        assert made.status_code == 201, made.text
        ids[org] = request_id
    records: list[dict[str, object]] = []
    with park.client("acme-admin") as admin:
        after = 0
        while page := admin.get("/audit", params={"after_seq": after, "limit": 1000}).json():
            records += page
            after = int(page[-1]["seq"])
    seen = {r["request_id"] for r in records}
    assert ids["acme"] in seen and ids["bravo"] not in seen
    assert {r["actor_org"] for r in records} == {"acme"}
