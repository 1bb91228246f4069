"""Import from and export to the Open Data Contract Standard (ODCS) v3 YAML.

FedPark → ODCS → FedPark is lossless: what ODCS has no place for (column roles, units, the
usage policy, NaN and monotonic rules) travels in ``customProperties``. Documents written by
other tools import one contract per schema object (``odcs_import``), typed by their
``physicalType`` where FedPark knows it (``odcs_types``), else by the ``logicalType``, with
``required``, ``unique``, ``logicalTypeOptions`` and library quality rules (``odcs_columns``).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import yaml
from pyarrow import types as pat

from fedpark.contracts.document import contract_to_data, parse_document
from fedpark.contracts.errors import ContractFormatError
from fedpark.contracts.model import Column, ColumnRole, Contract
from fedpark.contracts.odcs_import import Imported, import_odcs
from fedpark.contracts.types import value_type

API_VERSION = "v3.0.2"


def _logical(t: pa.DataType) -> str:
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


# The logicalTypeOptions the official schema allows per logical type; a rule it has no
# option for (a time's bounds) travels in customProperties, so the document stays valid.
_ALLOWED_OPTIONS = {
    "integer": {"minimum", "maximum"},
    "number": {"minimum", "maximum"},
    "date": {"minimum", "maximum"},
    "string": {"pattern"},
}


def _options(column: Column, prop: dict[str, Any]) -> dict[str, Any]:
    """Put the column's bounds and pattern where the schema allows them (a list's on its
    items, element-wise as FedPark checks them); return the rest as custom properties."""
    rules = column.rules
    options = {"minimum": rules.min, "maximum": rules.max, "pattern": rules.regex}
    options = {k: v for k, v in options.items() if v is not None}
    target, dtype = prop, column.arrow_type
    if prop["logicalType"] == "array" and options:
        target = prop["items"] = {"logicalType": _logical(value_type(dtype))}
    allowed = _ALLOWED_OPTIONS.get(target["logicalType"], set())
    if fitting := {k: v for k, v in options.items() if k in allowed}:
        target["logicalTypeOptions"] = fitting
    return {f"fedpark.{k}": v for k, v in options.items() if k not in allowed}


def _custom(**values: Any) -> list[dict[str, Any]]:
    return [
        {"property": k, "value": v} for k, v in values.items() if v is not None and v is not False
    ]


def _property(column: Column) -> dict[str, Any]:
    rules = column.rules
    prop: dict[str, Any] = {
        "name": column.name,
        "logicalType": _logical(column.arrow_type),
        "physicalType": column.type,
        "required": not column.nullable,
        "unique": rules.unique,
        "description": column.description,
    }
    elsewhere = _options(column, prop)
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
            **elsewhere,
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


def from_odcs(document: dict[str, Any], owner: str | None = None) -> Contract:
    """The contract of an ODCS v3 document with one schema object (with properties); one
    with several is refused naming them: :func:`import_odcs` makes one contract of each."""
    imported = import_odcs(document, owner)
    if len(imported) > 1:
        names = ", ".join(i.schema_name for i in imported)
        raise ContractFormatError(
            f"the document has {len(imported)} schema objects ({names}): import each as its "
            "own contract, or choose one (--schema NAME)"
        )
    return imported[0].contract


def load_odcs(text: str | bytes, owner: str | None = None) -> Contract:
    return from_odcs(parse_document(text, "ODCS document"), owner)


def load_odcs_all(
    text: str | bytes, owner: str | None = None, schema: str | None = None
) -> list[Imported]:
    """Every schema object's contract (or the one named ``schema``), with notes."""
    return import_odcs(parse_document(text, "ODCS document"), owner, schema)
