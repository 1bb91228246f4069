"""What the hub checks before it starts a run, each refusal on its own: the contract must be
approved, its policy must allow federated training by the caller's organization and not have
expired, k and the series must fit the contract, FedProx must say its mu (Flower's default
of 0 is FedAvg), and every participant must have declared compliant data. A launch that
passes them all reaches Flower (here: none configured, 503), so no refusal above is Flower's.
Nothing is written by any of them."""

from __future__ import annotations

from typing import Any

import pytest
from harness import Park, contract_in_state, declare_sample
from samples import contract_data


@pytest.fixture(scope="module")
def park(rules_park: Park) -> Park:
    """The hub's rules, in process (see ``rules_park``)."""
    return rules_park


def _policy(**changes: Any) -> dict[str, Any]:
    return contract_data()["policy"] | {"experiment_orgs": ["acme"], "min_factories": 2} | changes


def _launch(park: Park, data: dict[str, Any], **changes: Any) -> Any:
    body = {
        "name": "checked",
        "contract_id": data["id"],
        "contract_version": data["version"],
        "participants": ["acme", "bravo"],
        "min_factories": 2,
    } | changes
    with park.client("acme-researcher") as researcher:
        before = len(researcher.get("/experiments", params={"limit": 500}).json())
        answer = researcher.post("/experiments", json=body)
        after = len(researcher.get("/experiments", params={"limit": 500}).json())
    assert after == before, "a refused launch wrote something"
    return answer


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("not approved", 409, "is submitted"),
        ("no federated training", 403, "does not allow federated training"),
        ("policy expired", 409, "policy expired on 2020-01-01"),
        ("k below the contract's", 422, "at least the contract's k = 2"),
        ("series not an id column", 422, "series must name an id column"),
        ("fedprox without its mu", 422, "fedprox needs proximal_mu"),
        ("fedprox with a negative mu", 422, "proximal_mu must be 0 or more"),
        ("a participant without compliant data", 422, "no compliant dataset declared by: bravo"),
        ("everything right", 503, "no Flower SuperLink, so experiments are off"),
        ("fedprox with its mu", 503, "no Flower SuperLink, so experiments are off"),
    ],
)
def test_each_launch_check_refuses_on_its_own(
    park: Park, case: str, status: int, words: str
) -> None:
    policy = {
        "no federated training": _policy(purposes=["analytics"]),
        "policy expired": _policy(expires="2020-01-01"),
    }.get(case, _policy())
    data = contract_in_state(
        park, "submitted" if case == "not approved" else "approved", policy=policy
    )
    if case != "not approved":
        declare_sample(park, data, "acme")
        declare_sample(
            park, data, "bravo", compliant=case != "a participant without compliant data"
        )
    changes: dict[str, Any] = {
        "k below the contract's": {"min_factories": 1},
        "series not an id column": {"model": {"kind": "tcnn", "series": "temp"}},
        "fedprox without its mu": {"strategy": "fedprox"},
        "fedprox with a negative mu": {
            "strategy": "fedprox",
            "strategy_params": {"proximal_mu": -0.1},
        },
        "fedprox with its mu": {"strategy": "fedprox", "strategy_params": {"proximal_mu": 0.1}},
    }.get(case, {})
    answer = _launch(park, data, **changes)
    assert answer.status_code == status, (case, answer.text)
    assert words in answer.json()["detail"], answer.json()
