"""What the hub decides about Flower runs and nodes, through its API, in process: a launch
starts one run with the typed spec and records it, a stop stops the run once, two stops at
once have one winner, a node key registered twice is a conflict.

The hub is ``create_app(settings, runtime)`` behind Starlette's TestClient on SQLite and the
session's real S3; only Flower's Control API is a fake (:mod:`fakeflower`), given to the
runtime at its composition root (``HubRuntime.build(settings, flower=...)``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fakeflower import FakeFlowerControl
from harness import Park, add_member, build_park, contract_in_state, declare_sample
from inprocess import InProcessHub, in_process_hub
from samples import contract_data

from fedpark.experiments.protocol import HubOutput
from fedpark.hub.services.tokens import hash_token
from fedpark.hub.storage.embedded import EmbeddedS3


@pytest.fixture(scope="module")
def flower() -> FakeFlowerControl:
    return FakeFlowerControl()


@pytest.fixture(scope="module")
def hub(
    s3_server: EmbeddedS3, flower: FakeFlowerControl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessHub]:
    """A hub in process whose runtime drives the fake as its Flower."""
    data_dir = tmp_path_factory.mktemp("fake-flower-hub")
    limits = {"auth_failures_per_minute": 0, "requests_per_token_per_minute": 0}
    with in_process_hub(s3_server, data_dir, flower=flower, **limits) as hub:
        yield hub


@pytest.fixture(scope="module")
def park(hub: InProcessHub) -> Park:
    park = build_park(hub)  # type: ignore[arg-type]  # the same interface as HubProcess
    with hub.client(hub.admin_token) as admin:  # a second researcher of acme's, to race
        park.members["acme-researcher2"] = add_member(admin, "acme-r2", "acme", "researcher")
    return park


def _launch(park: Park) -> httpx.Response:
    """A launch that passes every check of the hub's: what happens next is Flower's."""
    policy = contract_data()["policy"] | {"experiment_orgs": ["acme"], "min_factories": 2}
    data = contract_in_state(park, "approved", policy=policy)
    declare_sample(park, data, "acme")
    declare_sample(park, data, "bravo")
    body = {
        "name": "faked",
        "contract_id": data["id"],
        "contract_version": data["version"],
        "participants": ["acme", "bravo"],
        "min_factories": 2,
    }
    with park.client("acme-researcher") as researcher:
        return researcher.post("/experiments", json=body)


def _launched(park: Park) -> tuple[str, int]:
    answer = _launch(park)
    assert answer.status_code == 201, answer.text
    experiment = answer.json()
    return experiment["id"], int(experiment["flower_run_id"])


def _node_key() -> str:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    encoded = public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return encoded.decode()


def test_a_launch_starts_one_run_with_the_typed_spec_and_records_it_pending_then_running(
    park: Park, hub: InProcessHub, flower: FakeFlowerControl
) -> None:
    before = len(flower.started)
    experiment_id, run_id = _launched(park)

    [spec] = flower.started[before:]  # a RunSpec: the fake takes no dict
    assert flower.runs[run_id].spec is spec
    assert spec.experiment_id == experiment_id and spec.participants == ["acme", "bravo"]
    assert spec.start_round == 0 and spec.min_factories == 2
    assert isinstance(spec.output, HubOutput)
    assert spec.output.hub_url == hub.runtime.settings.base_url  # where its ServerApp reports
    with hub.runtime.storage.unit_of_work() as uow:
        row = uow.experiments.get(experiment_id)
    assert row is not None
    assert row.status == "pending" and row.flower_run_id == str(run_id)
    assert row.run_token_hash == hash_token(spec.output.run_token)
    assert row.run_spec == spec.without_secrets()  # the stored spec, never the token

    flower.set_running(run_id)  # Flower runs it: the hub's watcher records so
    hub.runtime.supervisor.watch()
    with park.client("acme-researcher") as researcher:
        assert researcher.get(f"/experiments/{experiment_id}").json()["status"] == "running"


def test_a_launch_flower_does_not_take_is_a_503_and_records_nothing(
    park: Park, flower: FakeFlowerControl
) -> None:
    with park.client("acme-researcher") as researcher:
        before = len(researcher.get("/experiments", params={"limit": 500}).json())
    flower.unavailable = {"start_run"}
    try:
        answer = _launch(park)
    finally:
        flower.unavailable = set()
    assert answer.status_code == 503, answer.text
    assert answer.json()["detail"] == "the Flower SuperLink could not start the run"
    with park.client("acme-researcher") as researcher:
        assert len(researcher.get("/experiments", params={"limit": 500}).json()) == before


def test_a_stop_stops_the_run_once_and_a_second_stop_is_a_conflict(
    park: Park, flower: FakeFlowerControl
) -> None:
    experiment_id, run_id = _launched(park)
    with park.client("acme-researcher") as researcher:
        stopped = researcher.post(f"/experiments/{experiment_id}/stop")
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["status"] == "stopped"
        assert stopped.json()["error"] == "stopped by acme-researcher"
        again = researcher.post(f"/experiments/{experiment_id}/stop")
    assert again.status_code == 409 and "already stopped" in again.json()["detail"]
    assert flower.calls_to("stop").count((run_id,)) == 1
    assert flower.runs[run_id].status.sub_status == "stopped"


def test_two_stops_at_once_have_one_winner(park: Park, flower: FakeFlowerControl) -> None:
    experiment_id, run_id = _launched(park)
    # Both requests pass the hub's "still open?" check and reach Flower together (each waits
    # in the fake's stop for the other): the race the check alone cannot settle.
    flower.stop_barrier = threading.Barrier(2, timeout=10)

    def stop(who: str) -> httpx.Response:
        with park.client(who) as researcher:
            return researcher.post(f"/experiments/{experiment_id}/stop")

    try:
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(stop, ["acme-researcher", "acme-researcher2"]))
    finally:
        flower.stop_barrier = None
    codes = [a.status_code for a in answers]
    assert codes.count(200) == 1, [a.text for a in answers]
    [loser] = [a for a in answers if a.status_code != 200]
    # refused with the state it lost to (Flower's "already finished" was a 503 outage)
    assert loser.status_code == 409, loser.text
    assert loser.json()["detail"] == f"experiment {experiment_id} is already stopped"
    winner = ["acme-researcher", "acme-r2"][codes.index(200)]
    with park.client("acme-researcher") as researcher:
        row = researcher.get(f"/experiments/{experiment_id}").json()
    assert row["status"] == "stopped" and row["error"] == f"stopped by {winner}"
    assert flower.runs[run_id].status.sub_status == "stopped"


def test_a_node_key_registered_again_is_a_conflict(park: Park, flower: FakeFlowerControl) -> None:
    key = _node_key()
    with park.client("acme-factory") as factory:
        first = factory.post("/federation/nodes", json={"public_key": key})
        assert first.status_code == 201, first.text
        assert first.json()["org_id"] == "acme"
        again = factory.post("/federation/nodes", json={"public_key": key})
    with park.client("bravo-factory") as other:  # another factory with acme's key: the same
        stolen = other.post("/federation/nodes", json={"public_key": key})
    for answer in (again, stolen):
        assert answer.status_code == 409, answer.text
        assert answer.json()["detail"] == "this node key is already registered"
    registered = [args for args in flower.calls_to("register_node") if args[1] == "acme"]
    assert registered and all(isinstance(pem, bytes) for pem, _ in registered)


def test_only_factories_register_node_keys(park: Park, flower: FakeFlowerControl) -> None:
    before = len(flower.calls_to("register_node"))
    with park.client("acme-researcher") as researcher:
        refused = researcher.post("/federation/nodes", json={"public_key": _node_key()})
    assert refused.status_code == 403
    assert len(flower.calls_to("register_node")) == before  # refused before Flower is asked


def test_the_fake_is_the_runtime_s_only_flower(hub: InProcessHub) -> None:
    # One object behind every service, as the real one is; none built from the settings.
    runtime = hub.runtime
    assert runtime.settings.superlink is None
    assert runtime.experiments.flower is runtime.supervisor.flower is runtime.federation.flower
    assert isinstance(runtime.federation.flower, FakeFlowerControl)
    assert runtime.federation.flower.on_error == runtime.metrics.on_error


def test_a_stop_the_run_watcher_records_first_is_still_this_requests(
    park: Park, hub: InProcessHub, flower: FakeFlowerControl, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub's run watcher may see the stop in Flower and record it between this request's
    call to Flower and its own record: the answer is still 200, and the record says who."""
    experiment_id, _ = _launched(park)
    stop = flower.stop

    def stop_then_watch(run_id: int) -> None:
        stop(run_id)
        hub.runtime.supervisor.watch()  # a watcher's pass lands right here

    monkeypatch.setattr(flower, "stop", stop_then_watch)
    with park.client("acme-researcher") as researcher:
        answer = researcher.post(f"/experiments/{experiment_id}/stop")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "stopped"
    assert answer.json()["error"] == "stopped by acme-researcher"


def test_a_lost_run_can_be_stopped_and_is_not_resumed(
    park: Park, hub: InProcessHub, flower: FakeFlowerControl
) -> None:
    """Flower failed the run (lost with its process): stopping the experiment is still the
    researcher's to do, and it keeps the supervisor from starting a continuation."""
    experiment_id, run_id = _launched(park)
    flower.finish(run_id, "failed", "the ServerApp process exited")
    with park.client("acme-researcher") as researcher:
        answer = researcher.post(f"/experiments/{experiment_id}/stop")
    assert answer.status_code == 200, answer.text
    started = len(flower.started)
    hub.runtime.supervisor.watch()
    assert len(flower.started) == started  # nothing resumed
    with park.client("acme-researcher") as researcher:
        assert researcher.get(f"/experiments/{experiment_id}").json()["status"] == "stopped"


def test_a_completed_run_is_not_stopped_its_result_is_coming(
    park: Park, flower: FakeFlowerControl
) -> None:
    experiment_id, run_id = _launched(park)
    flower.finish(run_id, "completed")
    with park.client("acme-researcher") as researcher:
        answer = researcher.post(f"/experiments/{experiment_id}/stop")
        assert answer.status_code == 409, answer.text
        assert "its result is being recorded" in answer.json()["detail"]
        status = researcher.get(f"/experiments/{experiment_id}").json()["status"]
    assert status in ("pending", "running")
