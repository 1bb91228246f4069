"""The hub's own guard on k, behind the ServerApp's: a round report that claims an aggregate
of fewer factories than the experiment's k is refused and not recorded, a round below k is
recorded as having aggregated nothing, and a run with no aggregated round cannot be sealed
into a model. These hold whatever a ServerApp (a changed, buggy or hostile one holding the
run's token) sends; the ServerApp's own check is tested in
tests/experiments/test_contract_strategy.py and end to end in test_k_enforced.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from harness import Park, contract_in_state, finish_body, open_run
from samples import contract_data

from fedpark.experiments.protocol import FactoryResult, RoundReport

OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def park(rules_park: Park) -> Park:
    """The hub's rules, in process (see ``rules_park``)."""
    return rules_park


@pytest.fixture(scope="module")
def contract(park: Park) -> dict[str, Any]:
    policy = contract_data()["policy"] | {"experiment_orgs": ["acme"], "min_factories": 2}
    return contract_in_state(park, "approved", policy=policy)


def _run(park: Park, contract: dict[str, Any]) -> tuple[str, str]:
    return open_run(park, contract, "acme", ["acme", "bravo"], min_factories=2)


def _report(contributors: list[str], *, aggregated: bool = True, number: int = 1) -> dict:
    report = RoundReport(
        round=number,
        aggregated=aggregated,
        contributors=contributors,
        min_factories=2,
        train_factories=[
            FactoryResult(org=o, node_id=i + 1, examples=100, metrics={"train_loss": 0.5})
            for i, o in enumerate(contributors)
        ],
    )
    return report.model_dump(mode="json")


def _rounds(park: Park, experiment_id: str) -> list[dict[str, Any]]:
    with park.client("acme-researcher") as researcher:
        answer = researcher.get(f"/experiments/{experiment_id}/rounds")
    assert answer.status_code == 200, answer.text
    rounds: list[dict[str, Any]] = answer.json()
    return rounds


@pytest.mark.parametrize("contributors", [["acme"], ["acme", "acme"], []])
def test_an_aggregate_of_fewer_than_k_factories_is_refused_and_not_recorded(
    park: Park, contract: dict[str, Any], contributors: list[str]
) -> None:
    """One factory, the same factory twice (two of its nodes), or none: below k = 2."""
    experiment_id, token = _run(park, contract)
    with park.hub.client(token) as run:
        answer = run.post(f"/runs/{experiment_id}/rounds", json=_report(contributors))
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert "fewer than the experiment's k = 2" in problem["detail"]
    assert "contributors" in answer.text
    assert _rounds(park, experiment_id) == []


def test_a_round_below_k_is_recorded_as_aggregating_nothing(
    park: Park, contract: dict[str, Any]
) -> None:
    experiment_id, token = _run(park, contract)
    with park.hub.client(token) as run:
        answer = run.post(f"/runs/{experiment_id}/rounds", json=_report(["acme"], aggregated=False))
    assert answer.status_code < 300, answer.text
    (recorded,) = _rounds(park, experiment_id)
    assert recorded["report"]["aggregated"] is False
    assert recorded["report"]["contributors"] == ["acme"]


def test_a_run_with_no_aggregated_round_is_never_sealed(
    park: Park, contract: dict[str, Any]
) -> None:
    """The ServerApp uploads weights and asks to finish after a round below k: no model."""
    experiment_id, token = _run(park, contract)
    base = f"/runs/{experiment_id}"
    with park.hub.client(token) as run:
        assert run.post(f"{base}/rounds", json=_report(["acme"], aggregated=False)).is_success
        assert run.put(f"{base}/model", content=b"one factory's weights", headers=OCTETS).is_success
        answer = run.post(f"{base}/finish", json=finish_body(contract, {"rounds_completed": 1}))
    assert answer.status_code == 409, answer.text
    assert "no aggregated round" in answer.json()["detail"]
    with park.client("acme-researcher") as researcher:
        assert researcher.get(f"/models/{experiment_id}").status_code == 404


def test_a_run_token_reports_for_its_own_experiment_only(
    park: Park, contract: dict[str, Any]
) -> None:
    """A ServerApp holding one run's token cannot report rounds or seal another's."""
    mine, my_token = _run(park, contract)
    other, _ = _run(park, contract)
    base = f"/runs/{other}"
    with park.hub.client(my_token) as run:
        answers = [
            run.post(f"{base}/rounds", json=_report(["acme", "bravo"])),
            run.put(f"{base}/rounds/1/checkpoint", content=b"x", headers=OCTETS),
            run.put(f"{base}/model", content=b"x", headers=OCTETS),
            run.post(f"{base}/finish", json=finish_body(contract, {"rounds_completed": 1})),
        ]
    assert [a.status_code for a in answers] == [401] * 4, [a.text for a in answers]
    assert _rounds(park, other) == []
    assert _rounds(park, mine) == []
