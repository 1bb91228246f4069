"""Every error the hub raises is in one tree and mapped to an answer in one place, in
FedPark's words: never the text of a driver's, Flower's or a library's exception.

In process (``create_app`` behind a TestClient, real SQLite and the session's real S3): the
rules here are the hub's, not its process's.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from harness import Park, build_park, contract_in_state, running_experiment
from inprocess import InProcessHub, in_process_hub
from samples import contract_data, sensor_table
from sqlalchemy import text

from fedpark.contracts import Contract, validate_table
from fedpark.contracts.errors import ContractInvalidError, FieldProblem
from fedpark.hub.errors import CatalogError, StorageAuthError, StorageUnavailableError
from fedpark.hub.storage.embedded import EmbeddedS3


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once closed


@pytest.fixture(scope="module")
def hub(s3_server: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    # A SuperLink address where nothing listens: the Control API's calls fail in transport.
    superlink = f"127.0.0.1:{_closed_port()}"
    with in_process_hub(s3_server, tmp_path_factory.mktemp("hub"), superlink=superlink) as hub:
        yield hub


@pytest.fixture(scope="module")
def park(hub: InProcessHub) -> Park:
    return build_park(hub)  # type: ignore[arg-type]  # the same interface as HubProcess


def _approved_with_declarations(park: Park) -> dict[str, Any]:
    policy = contract_data()["policy"] | {"experiment_orgs": ["acme"], "min_factories": 2}
    data = contract_in_state(park, "approved", policy=policy)
    contract = Contract.model_validate(data)
    path = f"/contracts/{data['id']}/versions/{data['version']}/datasets"
    for org in ("acme", "bravo"):
        result = validate_table(contract, sensor_table(rows=200, seed=len(org)))
        with park.client(f"{org}-factory") as factory:
            body = result.declaration("line").model_dump(mode="json")
            assert factory.post(path, json=body).status_code == 201
    return data


def test_an_unreachable_superlink_is_503_saying_what_the_hub_tried(park: Park) -> None:
    data = _approved_with_declarations(park)
    body = {
        "name": "x",
        "contract_id": data["id"],
        "contract_version": data["version"],
        "participants": ["acme", "bravo"],
    }
    with park.client("acme-researcher") as researcher:
        before = researcher.get("/experiments").json()
        answer = researcher.post("/experiments", json=body)
        assert researcher.get("/experiments").json() == before  # nothing half-written
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"]
    detail = answer.json()["detail"]
    assert detail == "the Flower SuperLink could not start the run", detail
    # Not the transport's words, nor where the SuperLink lives.
    assert not any(w in answer.text.lower() for w in ("errno", "connect", "refused", "127.0.0.1"))


def test_a_stored_contract_that_is_not_one_is_stored_data_damaged(
    park: Park, hub: InProcessHub
) -> None:
    """Bytes that match the catalog's sha256 but are no contract (written broken, or the
    catalog row pointed elsewhere): an alert and a 500, not a 409 that blames the caller."""
    data = contract_in_state(park, "approved")
    storage = hub.runtime.storage
    bucket = storage.buckets["contracts"]
    broken = storage.objects.put_bytes(bucket, f"{data['id']}/broken.json", b'{"id": 1}')
    with storage.unit_of_work() as uow:
        row = uow.contracts.get(data["id"], data["version"])
        assert row is not None
        row.document_key, row.document_sha256 = broken.key, broken.sha256
        row.document_version_id = broken.version_id
    with park.client("acme-steward") as steward:
        answer = steward.get(f"/contracts/{data['id']}/versions/{data['version']}")
    assert answer.status_code == 500, answer.text
    assert answer.json()["type"] == "urn:fedpark:problem:stored-data-damaged"
    assert "validation error" not in answer.text and "pydantic" not in answer.text


def test_a_contract_error_is_422_naming_its_field(hub: InProcessHub) -> None:
    """Errors of the contracts package reaching the API answer as invalid input with the
    field they name (the mapping, shown on a route of the test's own)."""

    def refuse() -> None:
        message = "'Secret-Type-42' is not a type"  # pydantic's messages may quote the value
        raise ContractInvalidError([FieldProblem("columns.0.type", message)], "contract")

    hub.app.add_api_route("/api/v1/test-contract-error", refuse)
    with hub.client(hub.admin_token) as client:
        answer = client.get("/test-contract-error")
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["field"] == "columns.0.type" and "columns.0.type" in problem["detail"]
    assert "Secret-Type-42" not in answer.text
    assert json.loads(answer.text)["type"] == "urn:fedpark:problem:invalid-input"


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (StorageAuthError, "refuses the hub's credentials"),
        (StorageUnavailableError, "object storage is unavailable"),
        (CatalogError, "catalog is unavailable"),
    ],
)
def test_health_needs_no_token_and_says_what_is_down_not_the_drivers_words(
    hub: InProcessHub, monkeypatch: pytest.MonkeyPatch, error: type[Exception], says: str
) -> None:
    driver = "access key 'fedpark-s3-key' at http://10.0.0.7:8333: psycopg OperationalError"
    part = hub.runtime.storage.catalog if error is CatalogError else hub.runtime.storage.objects

    def down() -> None:
        raise error(driver)

    monkeypatch.setattr(part, "check", down)
    with hub.client() as anyone:
        answer = anyone.get("http://testserver/health")
    assert answer.status_code == 503, answer.text
    assert says in answer.text
    assert not any(w in answer.text for w in ("fedpark-s3-key", "10.0.0.7", "psycopg"))


def test_an_unreadable_json_column_is_stored_data_damaged(park: Park, hub: InProcessHub) -> None:
    """The catalog's JSON columns are read through their models: text that is not one (a
    hand edit, a restore gone wrong) is an alert and a 500, not a traceback or a wrong list."""
    contract = contract_in_state(park, "approved")
    experiment, _ = running_experiment(hub.runtime.storage.catalog, contract, "acme", ["acme"])
    update = text("UPDATE experiments SET participants = :value WHERE id = :id")
    with park.client("acme-researcher") as researcher:
        assert researcher.get(f"/experiments/{experiment}").status_code == 200  # readable
        with hub.runtime.storage.unit_of_work() as uow:
            uow.session.execute(update, {"value": "{not json", "id": experiment})
        answer = researcher.get(f"/experiments/{experiment}")
        with hub.runtime.storage.unit_of_work() as uow:  # mended: the module shares this hub
            uow.session.execute(update, {"value": '["acme"]', "id": experiment})
        assert researcher.get(f"/experiments/{experiment}").status_code == 200
    assert answer.status_code == 500, answer.text
    assert answer.json()["type"] == "urn:fedpark:problem:stored-data-damaged"
    assert "not json" not in answer.text
