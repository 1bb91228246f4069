"""Import from and export to the Open Data Contract Standard (ODCS) v3 YAML.

FedPark → ODCS → FedPark is lossless: what ODCS has no place for (column roles, units, the
usage policy, NaN and monotonic rules) travels in ``customProperties``. Contracts written by
other tools import with their schema (``physicalType`` when it is an Arrow type, else the
``logicalType``), ``required``, ``unique``, ``logicalTypeOptions`` and library quality rules.
"""

from __future__ import annotations

from typing import Any

import yaml
from pyarrow import types as pat

from fedpark.contracts.document import contract_from_data, contract_to_data, parse_document
from fedpark.contracts.errors import ContractFormatError
from fedpark.contracts.model import Column, ColumnRole, Contract, Domain
from fedpark.contracts.types import TypeSpecError, normalize_type, parse_type

API_VERSION = "v3.0.2"
_LOGICAL_TO_ARROW = {
    "integer": "int64",
    "number": "float64",
    "boolean": "bool",
    "string": "string",
    "date": "date32",
    "timestamp": "timestamp[us]",
    "array": "list<string>",
}


def _logical(column: Column) -> str:
    t = column.arrow_type
    if pat.is_integer(t):
        return "integer"
    if pat.is_floating(t) or pat.is_decimal(t):
        return "number"
    if pat.is_boolean(t):
        return "boolean"
    if pat.is_date(t) or pat.is_timestamp(t):
        return "date"
    if pat.is_list(t) or pat.is_large_list(t) or pat.is_fixed_size_list(t):
        return "array"
    if pat.is_struct(t):
        return "object"
    return "string"


def _custom(**values: Any) -> list[dict[str, Any]]:
    return [
        {"property": k, "value": v} for k, v in values.items() if v is not None and v is not False
    ]


def _property(column: Column) -> dict[str, Any]:
    rules = column.rules
    prop: dict[str, Any] = {
        "name": column.name,
        "logicalType": _logical(column),
        "physicalType": column.type,
        "required": not column.nullable,
        "unique": rules.unique,
        "description": column.description,
    }
    options = {"minimum": rules.min, "maximum": rules.max, "pattern": rules.regex}
    options = {k: v for k, v in options.items() if v is not None}
    if options:
        prop["logicalTypeOptions"] = options
    if column.role is ColumnRole.PII:
        prop["classification"] = "restricted"
    quality: list[dict[str, Any]] = []
    if rules.allowed_values is not None:
        quality.append(
            {"type": "library", "rule": "validValues", "validValues": list(rules.allowed_values)}
        )
    if rules.max_null_fraction is not None:
        quality.append(
            {
                "type": "library",
                "rule": "nullCheck",
                "unit": "percent",
                "mustBeLessOrEqualTo": rules.max_null_fraction * 100,
            }
        )
    if quality:
        prop["quality"] = quality
    prop["customProperties"] = _custom(
        **{
            "fedpark.role": column.role.value,
            "fedpark.unit": column.unit,
            "fedpark.finite": rules.finite,
            "fedpark.monotonic": rules.monotonic.value if rules.monotonic else None,
        }
    )
    return prop


def to_odcs(contract: Contract) -> dict[str, Any]:
    data = contract_to_data(contract)
    table_quality = []
    if contract.rows.min_rows is not None or contract.rows.max_rows is not None:
        rule: dict[str, Any] = {"type": "library", "rule": "rowCount"}
        if contract.rows.min_rows is not None:
            rule["mustBeGreaterOrEqualTo"] = contract.rows.min_rows
        if contract.rows.max_rows is not None:
            rule["mustBeLessOrEqualTo"] = contract.rows.max_rows
        table_quality.append(rule)
    table: dict[str, Any] = {
        "name": contract.id,
        "physicalType": "table",
        "properties": [_property(c) for c in contract.columns],
    }
    if table_quality:
        table["quality"] = table_quality
    return {
        "apiVersion": API_VERSION,
        "kind": "DataContract",
        "id": contract.id,
        "name": contract.title,
        "version": contract.version,
        "status": "draft",
        "domain": contract.domain.value,
        "description": {"purpose": contract.description},
        "schema": [table],
        "customProperties": _custom(
            **{"fedpark.owner": contract.owner, "fedpark.policy": data["policy"]}
        ),
    }


def dump_odcs(contract: Contract) -> str:
    return yaml.safe_dump(to_odcs(contract), sort_keys=False, allow_unicode=True)


def _customs(node: dict[str, Any]) -> dict[str, Any]:
    items = node.get("customProperties") or []
    return {str(i.get("property")): i.get("value") for i in items if isinstance(i, dict)}


def _arrow_type(prop: dict[str, Any]) -> str:
    physical = prop.get("physicalType")
    if isinstance(physical, str):
        try:
            return normalize_type(physical)
        except TypeSpecError:
            pass
    logical = str(prop.get("logicalType", "string"))
    if logical not in _LOGICAL_TO_ARROW:
        raise ContractFormatError(
            f"property {prop.get('name')!r}: cannot map logicalType {logical!r} to an Arrow type"
        )
    return _LOGICAL_TO_ARROW[logical]


def _column(prop: dict[str, Any]) -> dict[str, Any]:
    custom = _customs(prop)
    options = prop.get("logicalTypeOptions") or {}
    rules: dict[str, Any] = {
        "min": options.get("minimum"),
        "max": options.get("maximum"),
        "regex": options.get("pattern"),
        "unique": bool(prop.get("unique", False)),
        "finite": bool(custom.get("fedpark.finite", False)),
        "monotonic": custom.get("fedpark.monotonic"),
    }
    for check in prop.get("quality") or []:
        if check.get("rule") == "validValues":
            rules["allowed_values"] = check.get("validValues")
        elif check.get("rule") == "nullCheck" and "mustBeLessOrEqualTo" in check:
            rules["max_null_fraction"] = float(check["mustBeLessOrEqualTo"]) / 100
    role = custom.get("fedpark.role")
    if role is None:
        role = (
            "pii"
            if prop.get("classification") in ("restricted", "confidential", "pii")
            else ("id" if prop.get("primaryKey") else "feature")
        )
    type_text = _arrow_type(prop)
    if rules["min"] is not None and pat.is_temporal(parse_type(type_text)):
        rules["min"] = str(rules["min"])
    return {
        "name": prop.get("name"),
        "type": type_text,
        "nullable": not prop.get("required", False),
        "unit": custom.get("fedpark.unit"),
        "description": prop.get("description") or "",
        "role": role,
        "rules": {k: v for k, v in rules.items() if v is not None and v is not False},
    }


def from_odcs(document: dict[str, Any], owner: str | None = None) -> Contract:
    """Build a contract from an ODCS v3 document (its first schema object)."""
    if document.get("kind") != "DataContract" or not str(document.get("apiVersion", "")).startswith(
        "v3"
    ):
        raise ContractFormatError("not an ODCS v3 DataContract (kind/apiVersion)")
    schema = document.get("schema") or []
    if not schema or not isinstance(schema[0], dict):
        raise ContractFormatError("the ODCS document has no schema object")
    table = schema[0]
    custom = _customs(document)
    rows: dict[str, Any] = {}
    for check in table.get("quality") or []:
        if check.get("rule") == "rowCount":
            rows = {
                "min_rows": check.get("mustBeGreaterOrEqualTo"),
                "max_rows": check.get("mustBeLessOrEqualTo"),
            }
    description = document.get("description")
    data = {
        "id": document.get("id"),
        "version": str(document.get("version", "0.1.0")),
        "title": document.get("name") or document.get("id"),
        "description": description.get("purpose", "") if isinstance(description, dict) else "",
        "domain": document.get("domain")
        if document.get("domain") in {d.value for d in Domain}
        else "other",
        "owner": custom.get("fedpark.owner") or owner,
        "columns": [_column(p) for p in table.get("properties") or []],
        "rows": {k: v for k, v in rows.items() if v is not None},
    }
    if "fedpark.policy" in custom:
        data["policy"] = custom["fedpark.policy"]
    return contract_from_data(data, "ODCS document")


def load_odcs(text: str | bytes, owner: str | None = None) -> Contract:
    return from_odcs(parse_document(text, "ODCS document"), owner)
