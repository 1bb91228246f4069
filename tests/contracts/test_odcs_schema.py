"""ODCS documents against the official ODCS JSON schemas, vendored unmodified in
fixtures/odcs/schema (its README says where each came from).

Every hand-written fixture must be valid against the schema of its apiVersion. Every document
FedPark exports must be valid against the schema of the version the exporter writes. The
controls are documents that must fail, so these tests can fail too."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft201909Validator
from samples import ALL_TYPES, contract_data

from fedpark.contracts import Contract, ContractError
from fedpark.contracts.odcs import API_VERSION, dump_odcs, load_odcs_all
from fedpark.contracts.types import format_type
from fedpark.datasets.cmapss import cmapss_contract
from fedpark.datasets.tep import contract_document

FIXTURES = Path(__file__).parent / "fixtures" / "odcs"
SCHEMAS = FIXTURES / "schema"
ALL = sorted(FIXTURES.glob("*.yaml"))

# The published bytes (see schema/README.md): a reformatted or edited copy fails here.
PUBLISHED = {
    "v3.0.2": "fc9d774ea73d13b473a52868eb8e66784f3a031794d1d22dd94d76f8c9c07c79",
    "v3.1.0": "2cb7dd6fe43344d2233e0406438622681dc3ebadcf8f0d606a15b40c8f6752c0",
}


def _path(version: str) -> Path:
    return SCHEMAS / f"odcs-json-schema-{version}.json"


@functools.cache
def _validator(version: str) -> Draft201909Validator:
    return Draft201909Validator(json.loads(_path(version).read_bytes()))


def _schema_for(api_version: str) -> str:
    """The schema of a document's apiVersion. A v3.1 document uses the v3.1.0 schema. A v3.0
    document uses the v3.0.2 schema, which also lists the v2.2 versions; v3.0.x are patches."""
    return "v3.1.0" if api_version.startswith("v3.1") else "v3.0.2"


def _errors(document: Any, version: str) -> list[str]:
    """Each schema error as 'instance path: message', sorted (empty: the document is valid)."""
    found = _validator(version).iter_errors(document)
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in found)


@pytest.mark.parametrize("version", sorted(PUBLISHED))
def test_vendored_schema_is_the_published_json_schema(version: str) -> None:
    raw = _path(version).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == PUBLISHED[version]
    schema = json.loads(raw)
    assert schema["$schema"] == "https://json-schema.org/draft/2019-09/schema"
    Draft201909Validator.check_schema(schema)
    api = schema["properties"]["apiVersion"]
    assert api["default"] == version and version in api["enum"]


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_fixture_is_valid_against_the_schema_of_its_api_version(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    assert _errors(document, _schema_for(str(document["apiVersion"]))) == []


def _every_type() -> dict[str, Any]:
    extra = [
        "time64[us]",
        "time32[ms]",
        "duration[s]",
        "map<string, int32>",
        "fixed_size_binary[16]",
        'struct<"first name": string>',
        "list<struct<step: int64 not null, at: timestamp[us]>>",
    ]
    types = [format_type(t) for t in ALL_TYPES] + extra
    columns = [{"name": f"c{i}", "type": t} for i, t in enumerate(types)]
    return {**contract_data(), "columns": columns}


def _every_rule() -> dict[str, Any]:
    """Each rule FedPark has, on each kind of column it can sit on."""
    columns = [
        {
            "name": "ts",
            "type": "timestamp[ms, tz=UTC]",
            "nullable": False,
            "role": "time",
            "rules": {
                "min": "2020-01-01T00:00:00+00:00",
                "max": "2030-01-01T00:00:00+00:00",
                "monotonic": "increasing",
            },
        },
        {"name": "day", "type": "date32", "rules": {"min": "2020-01-01", "max": "2030-12-31"}},
        {"name": "clock", "type": "time64[us]", "rules": {"min": 0, "max": 86_399_999_999}},
        {"name": "wait", "type": "duration[s]", "rules": {"min": 0, "max": 60}},
        {"name": "price", "type": "decimal128(10, 2)", "rules": {"min": 0, "max": 100}},
        {
            "name": "temp",
            "type": "float32",
            "unit": "degC",
            "description": "Oil temperature",
            "rules": {"min": -40, "max": 200, "finite": True, "max_null_fraction": 0.05},
        },
        {
            "name": "code",
            "type": "string",
            "rules": {"regex": "[a-z]+", "allowed_values": ["ab", "cd"], "unique": True},
        },
        {"name": "fault", "type": "int32", "role": "label", "rules": {"allowed_values": [0, 1]}},
        {"name": "tags", "type": "list<string>", "rules": {"regex": "[a-z]+"}},
        {"name": "window", "type": "fixed_size_list<float32>[3]", "rules": {"min": -1, "max": 1}},
        {"name": "operator", "type": "string", "role": "pii"},
        {"name": "serial", "type": "int64", "role": "id", "rules": {"unique": True}},
    ]
    rows = {"min_rows": 10, "max_rows": 1_000_000}
    return {**contract_data(), "description": "Every rule", "columns": columns, "rows": rows}


EXPORTED = {
    "sample": contract_data,
    "every-type": _every_type,
    "every-rule": _every_rule,
    "tep": lambda: contract_document("acme"),
    "cmapss": lambda: cmapss_contract("acme"),
}


def _exported(name: str) -> Any:
    """What a partner reads: FedPark's ODCS export of the contract, as YAML parses it."""
    return yaml.safe_load(dump_odcs(Contract.model_validate(EXPORTED[name]())))


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_export_is_valid_against_the_schema_of_the_version_it_writes(name: str) -> None:
    document = _exported(name)
    assert document["apiVersion"] == API_VERSION
    assert _errors(document, API_VERSION) == []


# Refused on import, each for the reason test_odcs_import.REFUSED states: nothing to export.
REFUSED = {"empty-schema-object.yaml", "object-without-properties.yaml", "not-v3.yaml"}
IMPORTED = [p for p in ALL if p.name not in REFUSED]


@pytest.mark.parametrize("path", IMPORTED, ids=[p.name for p in IMPORTED])
def test_imported_fixture_exports_valid(path: Path) -> None:
    imported = load_odcs_all(path.read_bytes(), owner="acme")
    for item in imported:
        assert _errors(yaml.safe_load(dump_odcs(item.contract)), API_VERSION) == []


def test_the_refused_fixtures_are_refused() -> None:
    for name in sorted(REFUSED):
        with pytest.raises(ContractError):
            load_odcs_all((FIXTURES / name).read_bytes(), owner="acme")


def _sample() -> dict[str, Any]:
    return copy.deepcopy(_exported("sample"))


def _without_status() -> tuple[Any, str]:
    document = _sample()
    del document["status"]
    return document, "(root): 'status' is a required property"


def _unknown_key() -> tuple[Any, str]:
    document = {**_sample(), "owner": "acme"}
    return document, "(root): Additional properties are not allowed ('owner' was unexpected)"


def _unknown_api_version() -> tuple[Any, str]:
    document = {**_sample(), "apiVersion": "v4.0.0"}
    return document, "apiVersion: 'v4.0.0' is not one of"


def _nameless_property() -> tuple[Any, str]:
    document = _sample()
    del document["schema"][0]["properties"][0]["name"]
    return document, "schema/0/properties/0: 'name' is a required property"


def _minimum_on_a_string() -> tuple[Any, str]:
    """What the exporter must never write: a bound where the schema has no option for it."""
    document = _sample()
    machine = document["schema"][0]["properties"][1]
    assert machine["logicalType"] == "string"
    machine["logicalTypeOptions"] = {"minimum": 0}
    return document, "schema/0/properties/1/logicalTypeOptions: Additional properties"


def _time_before_v3_1() -> tuple[Any, str]:
    """A v3.1 logical type is invalid under the v3.0.2 schema: the version chosen matters."""
    document = yaml.safe_load((FIXTURES / "time-logical.yaml").read_text())
    return document, "schema/0/properties/0/logicalType: 'time' is not one of"


CONTROLS = {
    "no status": _without_status,
    "unknown key": _unknown_key,
    "unknown apiVersion": _unknown_api_version,
    "nameless property": _nameless_property,
    "minimum on a string": _minimum_on_a_string,
    "time before v3.1": _time_before_v3_1,
}


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_invalid_document_fails_naming_where(control: str) -> None:
    document, expected = CONTROLS[control]()
    errors = _errors(document, "v3.0.2")
    assert any(error.startswith(expected) for error in errors), errors
