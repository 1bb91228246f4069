"""Inference drafts, Ed25519 signatures, and version compatibility."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from samples import contract_data, sensor_table

from fedpark.contracts import Contract, SignatureError, validate_file
from fedpark.contracts.compat import compare
from fedpark.contracts.infer import infer_contract
from fedpark.contracts.signing import (
    approval_payload,
    load_public_key,
    public_key_pem,
    sign_document,
    verify_contract,
)


def test_inferred_draft_fits_its_own_data(good_parquet: Path) -> None:
    draft = infer_contract(good_parquet, contract_id="press-draft", owner="acme")
    by_name = {c.name: c for c in draft.columns}
    assert by_name["ts"].type == "timestamp[ms, tz=UTC]" and by_name["ts"].role.value == "time"
    assert by_name["serial"].role.value == "id" and by_name["operator"].role.value == "pii"
    assert by_name["fault"].role.value == "label"
    temp = by_name["temp"].rules
    assert temp.min is not None and temp.max is not None and temp.finite
    assert temp.min < 45 and temp.max > 75  # observed range with a margin
    # a machine identifies where a row comes from: an id, whose values are no rule (a new
    # machine must not break the contract)
    assert by_name["machine"].role.value == "id" and by_name["machine"].rules.allowed_values is None
    assert by_name["pressure"].nullable and by_name["pressure"].rules.max_null_fraction
    assert not by_name["temp"].nullable
    assert by_name["operator"].rules.allowed_values is None  # pii values never become rules
    assert validate_file(draft, good_parquet).report.passed


def test_inference_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "line.csv"
    pacsv.write_csv(sensor_table().drop_columns(["window"]), path)
    draft = infer_contract(path, contract_id="line", owner="acme")
    assert {c.name for c in draft.columns} == {
        "ts",
        "machine",
        "temp",
        "pressure",
        "fault",
        "serial",
        "operator",
    }
    assert validate_file(draft, path).report.passed


def _approve(contract: Contract, key: Ed25519PrivateKey) -> dict[str, Any]:
    payload = approval_payload(contract, "steward", "park-operator", datetime.now(UTC), "hub")
    return sign_document(payload, key)


def test_signature_verifies_and_detects_every_change(contract: Contract) -> None:
    key = Ed25519PrivateKey.generate()
    public = load_public_key(public_key_pem(key.public_key()))
    document = _approve(contract, key)
    assert verify_contract(contract, document, public)["approved_by"] == "steward"

    altered = contract.model_copy(update={"title": "Something else"})
    with pytest.raises(SignatureError, match="differs from the approved"):
        verify_contract(altered, document, public)
    forged = {**document, "payload": {**document["payload"], "approved_by": "mallory"}}
    with pytest.raises(SignatureError, match="altered"):
        verify_contract(contract, forged, public)
    other = Ed25519PrivateKey.generate()
    with pytest.raises(SignatureError, match="not by the given key"):
        verify_contract(contract, _approve(contract, other), public)
    with pytest.raises(SignatureError):
        verify_contract(contract, {"format": "x"}, public)


def _variant(
    change: dict[str, Any] | None = None,
    column: dict[str, Any] | None = None,
    rules: dict[str, Any] | None = None,
    index: int = 2,
) -> Contract:
    data = contract_data()
    data["version"] = "1.1.0"
    data.update(change or {})
    data["columns"][index].update(column or {})
    data["columns"][index]["rules"].update(rules or {})
    return Contract.model_validate(data)


@pytest.mark.parametrize(
    ("new", "compatible"),
    [
        (_variant(rules={"max": 150}), True),
        (_variant(rules={"max": 100}), False),
        (_variant(rules={"min": None}), True),
        (_variant(column={"type": "float64"}), True),
        (_variant(column={"type": "float16"}), False),
        (_variant(column={"unit": "degF"}), False),
        (_variant(column={"role": "pii"}), False),
        (_variant(column={"description": "Die temperature"}), True),
        (_variant(rules={"allowed_values": [0, 1, 2, 3, 4]}, index=4), True),
        (_variant(rules={"allowed_values": [0, 1]}, index=4), False),
        (_variant(rules={"monotonic": "increasing"}, index=0), True),
        (_variant(column={"nullable": True}, index=0), True),
        (_variant(rules={"regex": None}, index=1), True),
        (_variant(change={"title": "Renamed"}), True),
    ],
)
def test_compatibility_of_a_new_version(
    contract: Contract, new: Contract, compatible: bool
) -> None:
    report = compare(contract, new)
    assert report.compatible is compatible, report.changes
    assert report.changes


def test_added_and_removed_columns(contract: Contract) -> None:
    data = contract_data()
    data["columns"].append({"name": "vibration", "type": "float32"})
    assert compare(contract, Contract.model_validate(data)).compatible
    data["columns"][-1]["nullable"] = False
    assert not compare(contract, Contract.model_validate(data)).compatible
    data = contract_data()
    data["columns"].pop(2)
    report = compare(contract, Contract.model_validate(data))
    assert not report.compatible and report.changes[0].message == "column removed"
