"""Contracts through the hub: draft → submitted → approved (signed) → deprecated → retired."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest
from harness import Park, contract_in_state, new_contract
from minio import Minio
from samples import sensor_table

from fedpark.contracts import Contract, contract_from_data, validate_table
from fedpark.contracts.arrow import from_arrow_schema, schema_from_ipc_bytes
from fedpark.contracts.signing import load_public_key, verify_contract
from fedpark.hub.storage.embedded import EmbeddedS3


@pytest.fixture(scope="module")
def park(rules_park: Park) -> Park:
    """The hub's rules, in process (see ``rules_park``)."""
    return rules_park


def _path(data: dict[str, Any], version: str | None = None) -> str:
    return f"/contracts/{data['id']}/versions/{version or data['version']}"


def test_full_lifecycle_with_signature_verified_offline(park: Park) -> None:
    data = new_contract()
    with park.client("acme-factory") as factory:
        created = factory.post("/contracts", json=data)
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "draft" and created.json()["compatibility"] is None
        assert factory.post(f"{_path(data)}/approve").status_code == 403
        assert factory.post(f"{_path(data)}/submit").json()["status"] == "submitted"
    with park.client("acme-steward") as steward:
        queue = steward.get("/contracts", params={"status": "submitted"}).json()
        assert data["id"] in {c["contract_id"] for c in queue}
        approved = steward.post(f"{_path(data)}/approve").json()
        assert approved["status"] == "approved" and approved["signed"]
        assert approved["decided_by"] == "acme-steward"
        signature = steward.get(f"{_path(data)}/signature").json()
        document = steward.get(f"{_path(data)}/document").content
        schema = steward.get(f"{_path(data)}/schema").content
        pem = steward.get("/keys/hub").content
    contract = contract_from_data(json.loads(document))
    assert hashlib.sha256(document).hexdigest() == approved["document_sha256"]
    payload = verify_contract(contract, signature, load_public_key(pem))
    assert payload["approved_by"] == "acme-steward" and payload["approved_by_org"] == "acme"
    assert from_arrow_schema(schema_from_ipc_bytes(schema)) == contract

    with park.client("acme-factory") as factory:
        changed = {**data, "title": "Changed after approval"}
        immutable = factory.put(_path(data), json=changed)
        assert immutable.status_code == 409 and "immutable" in immutable.json()["detail"]
    with park.client("acme-steward") as steward:
        assert steward.post(f"{_path(data)}/retire").status_code == 409
        assert steward.post(f"{_path(data)}/deprecate").json()["status"] == "deprecated"
        assert steward.post(f"{_path(data)}/retire").json()["status"] == "retired"


def test_steward_cannot_approve_their_own_contract(park: Park) -> None:
    data = new_contract()
    with park.client("acme-steward") as steward:
        steward.post("/contracts", json=data)
        steward.post(f"{_path(data)}/submit")
        response = steward.post(f"{_path(data)}/approve")
    assert response.status_code == 403 and "own contract" in response.json()["detail"]


def test_rejection_with_reason_then_a_fixed_draft(park: Park) -> None:
    data = contract_in_state(park, "submitted")
    with park.client("acme-steward") as steward:
        assert steward.post(f"{_path(data)}/reject", json={}).status_code == 422
        rejected = steward.post(f"{_path(data)}/reject", json={"reason": "units missing"}).json()
    assert rejected["status"] == "rejected" and rejected["reason"] == "units missing"
    with park.client("acme-factory") as factory:
        fixed = factory.put(_path(data), json={**data, "title": "With units"}).json()
    assert fixed["status"] == "draft" and fixed["reason"] is None
    assert fixed["document"]["title"] == "With units"


def test_new_versions_say_whether_they_are_compatible(park: Park) -> None:
    data = contract_in_state(park, "approved")
    relaxed = json.loads(json.dumps(data))
    relaxed["version"] = "1.1.0"
    relaxed["columns"][2]["rules"]["max"] = 150
    tightened = json.loads(json.dumps(data))
    tightened["version"] = "2.0.0"
    tightened["columns"][2]["rules"]["max"] = 90
    with park.client("acme-factory") as factory:
        minor = factory.post("/contracts", json=relaxed).json()["compatibility"]
        major = factory.post("/contracts", json=tightened).json()["compatibility"]
        lower = factory.post("/contracts", json={**data, "version": "0.9.0"})
        versions = factory.get(f"/contracts/{data['id']}/versions").json()
    assert minor["compatible"] is True and minor["previous_version"] == "1.0.0"
    assert major["compatible"] is False
    assert any(c["field"] == "columns.temp.rules.max" for c in major["changes"])
    assert lower.status_code == 422 and lower.json()["field"] == "version"
    assert [v["version"] for v in versions] == ["1.0.0", "1.1.0", "2.0.0"]


@pytest.mark.parametrize(
    ("column", "key", "value", "field"),
    [
        (2, "type", "float33", "columns.2.type"),
        (1, "rules", {"regex": "("}, "columns.1.rules.regex"),
        (2, "rules", {"min": 10, "max": 5}, "columns.2.rules.max"),
        (3, "name", "temp", "columns"),
    ],
)
def test_malformed_contract_is_422_naming_the_field(
    park: Park, column: int, key: str, value: Any, field: str
) -> None:
    data = new_contract()
    data["columns"][column][key] = value
    with park.client("acme-factory") as factory:
        response = factory.post("/contracts", json=data)
    assert response.status_code == 422
    assert response.json()["field"] == field, response.json()


def test_owner_and_id_belong_to_the_author(park: Park) -> None:
    data = contract_in_state(park, "draft")
    with park.client("bravo-factory") as bravo:
        foreign_owner = bravo.post("/contracts", json=new_contract(owner="acme"))
        hijack = bravo.post("/contracts", json={**data, "owner": "bravo", "version": "9.0.0"})
        peek = bravo.get(_path(data))
    assert foreign_owner.status_code == 422 and foreign_owner.json()["field"] == "owner"
    assert hijack.status_code == 409
    assert peek.status_code == 404  # another organization's draft


@pytest.mark.parametrize("field", ["experiment_orgs", "model_download_orgs"])
def test_a_policy_naming_an_unknown_organization_is_refused(park: Park, field: str) -> None:
    data = new_contract(policy={field: ["bravo", "tu-lab"]})
    draft = contract_in_state(park, "draft")
    changed = {**draft, "policy": {field: ["acme", "acme-stel"]}}
    with park.client("acme-factory") as factory:
        created = factory.post("/contracts", json=data)
        updated = factory.put(_path(draft), json=changed)
    assert created.status_code == 422 and created.json()["field"] == f"policy.{field}"
    assert created.json()["detail"] == (
        f'policy.{field} names "tu-lab": no organization of this hub has that id '
        "(`fedpark org list` shows them)"
    )
    assert updated.status_code == 422, updated.text
    assert updated.json()["detail"].startswith(f'policy.{field} names "acme-stel": no organization')


def test_oversize_body_is_413(park: Park) -> None:
    data = new_contract(description="x" * (9 * 1024 * 1024))
    with park.client("acme-factory") as factory:
        response = factory.post("/contracts", json=data)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_search_by_domain_owner_status_and_column(park: Park) -> None:
    mobility = new_contract(domain="mobility")
    mobility["columns"].append({"name": "wheel_speed", "type": "float32", "unit": "rpm"})
    with park.client("bravo-factory") as bravo:
        bravo.post("/contracts", json={**mobility, "owner": "bravo"})
        found = bravo.get("/contracts", params={"column": "wheel_speed"}).json()
        by_domain = bravo.get("/contracts", params={"domain": "mobility", "owner": "bravo"}).json()
    assert [c["contract_id"] for c in found] == [mobility["id"]]
    assert mobility["id"] in {c["contract_id"] for c in by_domain}
    with park.client("acme-researcher") as researcher:  # sees approved ones only (+ acme's)
        visible = researcher.get("/contracts", params={"column": "wheel_speed"}).json()
    assert visible == []


def _declaration(contract: Contract, **report_changes: Any) -> dict[str, Any]:
    result = validate_table(contract, sensor_table())
    report = result.report.model_dump(mode="json") | report_changes
    return {"name": "line-3", "report": report, "profile": result.profile.model_dump(mode="json")}


def test_factories_declare_datasets_without_rows(park: Park) -> None:
    data = contract_in_state(park, "approved")
    contract = Contract.model_validate(data)
    with park.client("acme-factory") as factory:
        declared = factory.post(f"{_path(data)}/datasets", json=_declaration(contract))
        assert declared.status_code == 201, declared.text
        again = factory.post(f"{_path(data)}/datasets", json=_declaration(contract))
        assert again.json()["id"] == declared.json()["id"]  # a refresh, not a duplicate
        wrong = factory.post(
            f"{_path(data)}/datasets", json=_declaration(contract, contract_sha256="0" * 64)
        )
        assert wrong.status_code == 422 and wrong.json()["field"] == "report.contract_sha256"
        smuggled = _declaration(contract)
        smuggled["profile"]["rows_sample"] = [[1, 2, 3]]
        assert factory.post(f"{_path(data)}/datasets", json=smuggled).status_code == 422
    with park.client("bravo-factory") as bravo:
        bravo.post(f"{_path(data)}/datasets", json=_declaration(contract))
        assert {d["org_id"] for d in bravo.get(f"{_path(data)}/datasets").json()} == {"bravo"}
    with park.client("acme-researcher") as researcher:
        listed = researcher.get(f"{_path(data)}/datasets").json()
    assert {(d["org_id"], d["compliant"]) for d in listed} == {("acme", True), ("bravo", True)}
    assert listed[0]["profile"]["rows"] == 5000 and listed[0]["rule_counts"] == {}
    with park.client("acme-partner") as partner:
        assert partner.get(f"{_path(data)}/datasets").status_code == 403


def test_tampered_contract_object_is_refused(park: Park, s3_server: EmbeddedS3) -> None:
    data = contract_in_state(park, "approved")
    bucket = park.hub.bucket_prefix + "-contracts"
    raw = Minio(
        s3_server.endpoint,
        s3_server.credentials.access_key,
        s3_server.credentials.secret_key,
        secure=False,
    )
    evil = json.dumps({**data, "title": "Swapped"}).encode()
    raw.put_object(bucket, f"{data['id']}/1.0.0/contract.json", io.BytesIO(evil), len(evil))
    with park.client("acme-researcher") as researcher:
        # The catalog pins the object version it wrote: the swap does not reach readers.
        document = researcher.get(f"{_path(data)}/document")
        recorded = researcher.get(_path(data)).json()["document_sha256"]
    assert document.status_code == 200
    served = hashlib.sha256(document.content).hexdigest()
    assert served == recorded != hashlib.sha256(evil).hexdigest()
