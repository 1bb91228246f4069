"""The role matrix of the experiment and model endpoints on real objects: an experiment with
a sealed model owned by each of two organizations, asked for by every role of both and the
park's admin. A handler without its authorization would answer 200 where this table says 404
or 403 (on a missing experiment, as the general matrix uses, every caller gets 404 anyway).

The experiments are made without Flower (rows in the catalog, as a launch writes them), then
reported and sealed through the hub's own run endpoints with their run tokens: the rounds,
the model, its manifest and its signature are the hub's, not the test's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from harness import ROLES, Park, contract_in_state, finish_body, open_run
from samples import contract_data

from fedpark.experiments.protocol import FactoryResult, RoundReport

# A sweep (every role over every experiment and model of two organizations, sealed through
# the run endpoints): in process, but with the integration suite.
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def park(rules_park: Park) -> Park:
    """The hub's rules, in process (see ``rules_park``)."""
    return rules_park


WHO = ("operator", *(f"{org}-{role}" for org in ("acme", "bravo") for role in ROLES))


@dataclass
class Made:
    id: str
    org: str
    participants: list[str]
    token: str
    contract: dict[str, Any]


def _experiment(park: Park, contract: dict[str, Any], org: str, participants: list[str]) -> Made:
    """An experiment of ``org``'s researcher, running, as a launch leaves it."""
    experiment_id, token = open_run(park, contract, org, participants, name=f"{org}'s")
    return Made(experiment_id, org, participants, token, contract)


def _sealed(park: Park, made: Made) -> Made:
    """One round and the model, reported by the run's ServerApp (its token), then sealed."""
    report = RoundReport(
        round=1,
        contributors=sorted(made.participants),
        min_factories=1,
        train={"train_loss": 0.5},
        train_factories=[
            FactoryResult(org=o, node_id=i + 1, examples=100, metrics={"train_loss": 0.5})
            for i, o in enumerate(sorted(made.participants))
        ],
    )
    base = f"{park.hub.url}/api/v1/runs/{made.id}"
    octets = {"Content-Type": "application/octet-stream"}
    with park.hub.client(made.token) as run:
        for method, path, kwargs in (
            ("PUT", "/rounds/1/checkpoint", {"content": b"checkpoint", "headers": octets}),
            ("POST", "/rounds", {"json": report.model_dump(mode="json")}),
            ("PUT", "/model", {"content": b"weights of " + made.id.encode(), "headers": octets}),
            ("POST", "/finish", {"json": finish_body(made.contract, {"rounds_completed": 1})}),
        ):
            answer = run.request(method, base + path, **kwargs)
            assert answer.status_code < 300, (path, answer.text)
    return made


@pytest.fixture(scope="module")
def world(park: Park) -> dict[str, Made]:
    """acme's experiment (acme's factory only) and bravo's (both factories), each with its
    model, on a contract of acme's whose models acme may download; plus running ones to stop."""
    policy = contract_data()["policy"] | {
        "experiment_orgs": ["acme", "bravo"],
        "model_download_orgs": ["acme"],
        "min_factories": 1,
    }
    contract = contract_in_state(park, "approved", policy=policy)
    return {
        "acme": _sealed(park, _experiment(park, contract, "acme", ["acme"])),
        "bravo": _sealed(park, _experiment(park, contract, "bravo", ["acme", "bravo"])),
    }


def _visible(who: str, made: Made) -> bool:
    """Who sees an experiment: the park's admin, stewards, its own organization, and the
    factories taking part."""
    org, _, role = who.partition("-")
    return (
        who == "operator"
        or role == "steward"
        or org == made.org
        or (role == "factory" and org in made.participants)
    )


def _downloads(who: str, made: Made) -> bool:
    """Who downloads its model: the park's admin, its own organization, and the
    organizations the contract names (acme)."""
    org = who.partition("-")[0]
    return who == "operator" or org == made.org or org == "acme"


@pytest.mark.parametrize("owner", ["acme", "bravo"])
@pytest.mark.parametrize(
    "part", ["", "/rounds", "model", "model/weights", "model/manifest", "model/signature"]
)
def test_reading_experiments_and_models_by_every_role(
    park: Park, world: dict[str, Made], owner: str, part: str
) -> None:
    made = world[owner]
    path = (
        f"/models/{made.id}{part.removeprefix('model')}"
        if part.startswith("model")
        else f"/experiments/{made.id}{part}"
    )
    allowed = _downloads if part.startswith("model") else _visible
    got, expected = {}, {}
    for who in WHO:
        with park.client(who) as client:
            got[who] = client.get(path).status_code
        expected[who] = 200 if allowed(who, made) else 404
    assert got == expected
    with park.hub.client() as anonymous:
        assert anonymous.get(path).status_code == 401


@pytest.mark.parametrize("owner", ["acme", "bravo"])
def test_lists_show_exactly_what_each_role_may_see(
    park: Park, world: dict[str, Made], owner: str
) -> None:
    made = world[owner]
    for who in WHO:
        with park.client(who) as client:
            experiments = {
                e["id"] for e in client.get("/experiments", params={"limit": 500}).json()
            }
            models = {
                m["experiment_id"] for m in client.get("/models", params={"limit": 500}).json()
            }
        assert (made.id in experiments) == _visible(who, made), who
        assert (made.id in models) == _downloads(who, made), who


@pytest.mark.parametrize("owner", ["acme", "bravo"])
def test_only_the_launching_organizations_researchers_stop_an_experiment(
    park: Park, world: dict[str, Made], owner: str
) -> None:
    """Each caller tries a running experiment of its own (a stop that wins changes it)."""
    template = world[owner]
    with park.client("operator") as admin:
        row = admin.get(f"/experiments/{template.id}").json()
    contract = {"id": row["contract_id"], "version": row["contract_version"]}
    got, expected = {}, {}
    for who in WHO:
        made = _experiment(park, contract, owner, template.participants)
        with park.client(who) as client:
            got[who] = client.post(f"/experiments/{made.id}/stop").status_code
        if not _visible(who, made):
            expected[who] = 404
        elif who == f"{owner}-researcher":
            expected[who] = 200
        else:
            expected[who] = 403
    assert got == expected
    fresh = _experiment(park, contract, owner, template.participants)
    with park.hub.client() as anonymous:
        assert anonymous.post(f"/experiments/{fresh.id}/stop").status_code == 401
