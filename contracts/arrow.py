"""Contracts as Arrow schemas, losslessly: contract → ``pa.Schema`` → contract.

Column units, roles, descriptions and rules travel as field metadata, and the rest of the
contract as schema metadata, so the IPC schema bytes stored beside a contract carry all of it.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from fedpark.contracts.document import contract_to_data
from fedpark.contracts.errors import ContractFormatError
from fedpark.contracts.model import Column, Contract
from fedpark.contracts.types import format_type

_NS = "fedpark."


def _field(column: Column) -> pa.Field:
    meta = {
        "role": column.role.value,
        "description": column.description,
        "rules": json.dumps(column.rules.model_dump(mode="json"), sort_keys=True),
    }
    if column.unit is not None:
        meta["unit"] = column.unit
    return pa.field(
        column.name,
        column.arrow_type,
        nullable=column.nullable,
        metadata={f"{_NS}{k}": v for k, v in meta.items()},
    )


def to_arrow_schema(contract: Contract) -> pa.Schema:
    data = contract_to_data(contract)
    data.pop("columns")
    return pa.schema(
        [_field(c) for c in contract.columns],
        metadata={f"{_NS}contract": json.dumps(data, sort_keys=True)},
    )


def from_arrow_schema(schema: pa.Schema) -> Contract:
    """Rebuild the contract a schema was made from (needs FedPark's metadata)."""
    meta = schema.metadata or {}
    raw = meta.get(f"{_NS}contract".encode())
    if raw is None:
        raise ContractFormatError("this Arrow schema carries no FedPark contract metadata")
    data: dict[str, Any] = json.loads(raw)
    columns = []
    for field in schema:
        fmeta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
        column: dict[str, Any] = {
            "name": field.name,
            "type": format_type(field.type),
            "nullable": field.nullable,
            "role": fmeta.get(f"{_NS}role", "feature"),
            "description": fmeta.get(f"{_NS}description", ""),
            "rules": json.loads(fmeta.get(f"{_NS}rules", "{}")),
        }
        if f"{_NS}unit" in fmeta:
            column["unit"] = fmeta[f"{_NS}unit"]
        columns.append(column)
    data["columns"] = columns
    return Contract.model_validate(data)


def schema_ipc_bytes(contract: Contract) -> bytes:
    """The contract's schema as an Arrow IPC schema message."""
    return bytes(to_arrow_schema(contract).serialize())


def schema_from_ipc_bytes(data: bytes) -> pa.Schema:
    try:
        return pa.ipc.read_schema(pa.py_buffer(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ContractFormatError(f"not an Arrow IPC schema: {exc}") from None
