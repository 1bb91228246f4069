"""Arrow schema, YAML/JSON and ODCS v3 forms of a contract."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from samples import ALL_TYPES

from fedpark.contracts import (
    Contract,
    ContractFormatError,
    dump_yaml,
    load_contract,
    parse_document,
    save_contract,
)
from fedpark.contracts.arrow import (
    from_arrow_schema,
    schema_from_ipc_bytes,
    schema_ipc_bytes,
    to_arrow_schema,
)
from fedpark.contracts.odcs import dump_odcs, load_odcs
from fedpark.contracts.types import format_type


def test_arrow_schema_round_trip_keeps_everything(contract: Contract) -> None:
    schema = to_arrow_schema(contract)
    assert schema.field("temp").type == pa.float32()
    assert schema.field("temp").metadata[b"fedpark.unit"] == b"degC"
    assert not schema.field("ts").nullable
    assert from_arrow_schema(schema) == contract
    restored = schema_from_ipc_bytes(schema_ipc_bytes(contract))
    assert restored.equals(schema, check_metadata=True)
    assert from_arrow_schema(restored) == contract


def test_every_type_survives_the_schema_round_trip(contract: Contract) -> None:
    columns = [{"name": f"c{i}", "type": format_type(t)} for i, t in enumerate(ALL_TYPES)]
    wide = Contract.model_validate({**contract.model_dump(mode="json"), "columns": columns})
    assert from_arrow_schema(schema_from_ipc_bytes(schema_ipc_bytes(wide))) == wide


def test_foreign_schemas_are_refused() -> None:
    with pytest.raises(ContractFormatError, match="no FedPark contract"):
        from_arrow_schema(pa.schema([pa.field("a", pa.int8())]))
    with pytest.raises(ContractFormatError, match="IPC schema"):
        schema_from_ipc_bytes(b"not arrow")


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_yaml_and_json_files_round_trip(contract: Contract, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"c{suffix}"
    save_contract(contract, path)
    assert load_contract(path) == contract


def test_odcs_round_trip_is_lossless(contract: Contract) -> None:
    text = dump_odcs(contract)
    document = yaml.safe_load(text)
    assert document["apiVersion"].startswith("v3") and document["kind"] == "DataContract"
    temp = next(p for p in document["schema"][0]["properties"] if p["name"] == "temp")
    assert temp["logicalType"] == "number"
    assert temp["logicalTypeOptions"] == {"minimum": 0, "maximum": 120}
    assert load_odcs(text) == contract


def test_foreign_odcs_document_imports() -> None:
    text = """
apiVersion: v3.0.2
kind: DataContract
id: line-quality
name: Line quality
version: 2.1.0
domain: semiconductor
description: {purpose: Wafer inspection results}
schema:
  - name: inspections
    properties:
      - {name: wafer_id, logicalType: string, primaryKey: true, required: true, unique: true}
      - name: thickness
        logicalType: number
        required: true
        logicalTypeOptions: {minimum: 700, maximum: 800}
      - name: grade
        logicalType: string
        quality:
          - {type: library, rule: validValues, validValues: [A, B, C]}
          - {type: library, rule: nullCheck, unit: percent, mustBeLessOrEqualTo: 5}
    quality:
      - {type: library, rule: rowCount, mustBeGreaterOrEqualTo: 10}
"""
    contract = load_odcs(text, owner="fab-one")
    assert contract.owner == "fab-one" and contract.domain.value == "semiconductor"
    wafer, thickness, grade = contract.columns
    assert wafer.role.value == "id" and wafer.rules.unique and not wafer.nullable
    assert thickness.type == "float64" and thickness.rules.min == 700
    assert grade.rules.allowed_values == ["A", "B", "C"]
    assert grade.rules.max_null_fraction == pytest.approx(0.05)
    assert contract.rows.min_rows == 10


def test_not_odcs_is_refused() -> None:
    with pytest.raises(ContractFormatError, match="ODCS v3"):
        load_odcs("kind: Something\napiVersion: v2\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: x1\nrules: " + "[" * 5000 + "]" * 5000 + "\n", "nests more than 64 levels"),
        ("id: x1\nrules: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "nests more than 64 levels"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
                for p, c in zip("abcdefghijklm", "bcdefghijklmn", strict=True)
            ),
            "more than 100 YAML aliases",
        ),
    ],
    ids=["deep lists", "deep mappings", "billion laughs"],
)
def test_abusive_yaml_is_a_format_error_not_a_crash(
    tmp_path: Path, text: str, message: str
) -> None:
    """No RecursionError and no exponential expansion: a clear error (the CLI's exit 2)."""
    path = tmp_path / "abusive.yaml"
    path.write_text(text)
    with pytest.raises(ContractFormatError, match=message):
        load_contract(path)


FIXTURES = sorted((Path(__file__).parent / "fixtures").rglob("*.yaml"))
JSON_FIXTURES = sorted((Path(__file__).parent / "fixtures").rglob("*.json"))


def test_documents_read_as_the_python_parser_reads_them(contract: Contract) -> None:
    """The contract's own YAML and JSON and every third-party fixture give the same data
    through the loader FedPark uses (libyaml's parser where PyYAML has it) as through
    PyYAML's own, including what only PyYAML reads (JSON's escaped surrogate pairs)."""
    from fedpark.contracts import document

    assert document._LOADER is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    assert (document._LOADER is not yaml.SafeLoader) == yaml.__with_libyaml__
    assert len(FIXTURES) > 10 and JSON_FIXTURES
    data = contract.model_dump(mode="json")
    data["description"] = "Gauge \U0001f642 and Grüße"  # json.dumps escapes: \ud83d\ude42
    texts = [
        dump_yaml(contract),
        json.dumps(data),
        json.dumps(data, ensure_ascii=False, indent=2),
        *(path.read_text() for path in [*FIXTURES, *JSON_FIXTURES]),
    ]
    for text in texts:
        assert parse_document(text) == yaml.load(text, Loader=yaml.SafeLoader)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('id: "a\ud800"\n', "^contract is not valid"),  # a lone surrogate
        ('id: "\\U00110000"\n', "escaped character outside Unicode"),  # past U+10FFFF
        ("id: x\nexpires: 2024-02-30\n", "a date that does not exist"),
    ],
)
def test_text_yaml_cannot_read_is_a_format_error(text: str, message: str) -> None:
    with pytest.raises(ContractFormatError, match=message):
        parse_document(text)
