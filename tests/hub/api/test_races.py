"""One winner per state transition: two stewards deciding the same contract version at the
same moment (approve against reject) over HTTP, 25 times. Exactly one gets 200, the other 409
naming the state it lost to; a signature exists only for an approved version, and it verifies;
a version changed after a decision carries no earlier signature."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from harness import Park, contract_in_state

from fedpark.contracts import Contract
from fedpark.contracts.signing import load_public_key, verify_contract

pytestmark = pytest.mark.integration

TRIES = 25


def _decide(park: Park, path: str) -> tuple[httpx.Response, httpx.Response]:
    barrier = threading.Barrier(2)

    def approve() -> httpx.Response:
        with park.client("acme-steward") as steward:
            barrier.wait()
            return steward.post(f"{path}/approve")

    def reject() -> httpx.Response:
        with park.client("bravo-steward") as steward:
            barrier.wait()
            return steward.post(f"{path}/reject", json={"reason": "not this one"})

    with ThreadPoolExecutor(2) as pool:
        approved, rejected = pool.submit(approve), pool.submit(reject)
        return approved.result(), rejected.result()


def test_approve_and_reject_at_once_one_wins_and_only_approval_is_signed(park: Park) -> None:
    with park.client("acme-factory") as reader:
        key = load_public_key(reader.get("/keys/hub").content)
    winners: Counter[str] = Counter()
    for _ in range(TRIES):
        data = contract_in_state(park, "submitted")
        path = f"/contracts/{data['id']}/versions/{data['version']}"
        approved, rejected = _decide(park, path)
        codes = {"approved": approved.status_code, "rejected": rejected.status_code}
        assert sorted(codes.values()) == [200, 409], (approved.text, rejected.text)
        winner = "approved" if approved.status_code == 200 else "rejected"
        loser = rejected if winner == "approved" else approved
        assert winner in loser.json()["detail"], loser.json()
        winners[winner] += 1
        with park.client("acme-factory") as reader:
            state = reader.get(path).json()
            signature = reader.get(f"{path}/signature")
        assert state["status"] == winner and state["signed"] == (winner == "approved")
        if winner == "approved":
            contract = Contract.model_validate(state["document"])
            assert verify_contract(contract, signature.json(), key)["approved_by"] == (
                "acme-steward"
            )
        else:
            assert signature.status_code == 404
    print(f"{TRIES} races: {dict(winners)}")


def test_a_version_changed_after_its_decision_carries_no_earlier_signature(park: Park) -> None:
    data = contract_in_state(park, "submitted")
    path = f"/contracts/{data['id']}/versions/{data['version']}"
    with park.client("acme-steward") as steward:
        assert steward.post(f"{path}/reject", json={"reason": "units"}).status_code == 200
    with park.client("acme-factory") as author:
        data["title"] = "Press line sensors (units fixed)"
        assert author.put(path, json=data).json()["status"] == "draft"
        assert author.get(f"{path}/signature").status_code == 404
        assert author.post(f"{path}/submit").json()["status"] == "submitted"
        state = author.get(path).json()
    assert (state["signed"], state["decided_by"], state["decided_at"]) == (False, None, None)


def test_four_way_races_never_leave_a_signature_on_anything_but_an_approval(park: Park) -> None:
    """approve, reject, update and submit at once on a submitted version, 15 times: whatever
    order they land in, the version ends in a state one of them could produce, and it carries
    a valid signature exactly when it is approved."""
    with park.client("acme-factory") as reader:
        key = load_public_key(reader.get("/keys/hub").content)
    for _ in range(15):
        data = contract_in_state(park, "submitted")
        path = f"/contracts/{data['id']}/versions/{data['version']}"
        barrier = threading.Barrier(4)
        changed = {**data, "title": "Press line sensors (edited)"}

        def act(
            who: str,
            method: str,
            suffix: str,
            body: object = None,
            barrier: threading.Barrier = barrier,
            path: str = path,
        ) -> int:
            with park.client(who) as client:
                barrier.wait()
                return client.request(method, f"{path}{suffix}", json=body).status_code

        with ThreadPoolExecutor(4) as pool:
            codes = [
                pool.submit(act, *call)
                for call in (
                    ("acme-steward", "POST", "/approve"),
                    ("bravo-steward", "POST", "/reject", {"reason": "race"}),
                    ("acme-factory", "PUT", "", changed),
                    ("acme-factory", "POST", "/submit"),
                )
            ]
            statuses = [c.result() for c in codes]
        assert set(statuses) <= {200, 409}, statuses
        with park.client("acme-factory") as reader:
            state = reader.get(path).json()
            signature = reader.get(f"{path}/signature")
        assert state["status"] in ("approved", "rejected", "draft", "submitted"), state
        assert state["signed"] == (state["status"] == "approved")
        if state["status"] == "approved":
            contract = Contract.model_validate(state["document"])
            verify_contract(contract, signature.json(), key)
        else:
            assert signature.status_code == 404
