"""Dataset contracts: Arrow schemas, value rules and usage policies.

Imports no other FedPark package; the hub and the factory client both build on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedpark.contracts.lazy import lazy_exports

if TYPE_CHECKING:
    from fedpark.contracts.document import (
        canonical_json,
        contract_from_data,
        contract_sha256,
        dump_yaml,
        load_contract,
        parse_document,
        save_contract,
    )
    from fedpark.contracts.errors import (
        ContractError,
        ContractFormatError,
        ContractInvalidError,
        DataError,
        SignatureError,
        UnreadableDataError,
    )
    from fedpark.contracts.model import (
        Column,
        ColumnRole,
        ColumnRules,
        Contract,
        Domain,
        UsagePolicy,
    )
    from fedpark.contracts.report import DataProfile, Declaration, ValidationReport
    from fedpark.contracts.validate import ValidationResult, validate_file, validate_table

# Loaded on first use: the command line and the wire protocol import light parts of this
# package (names, errors, reports) and must not pay for pyarrow at start.
_EXPORTS = {
    "Column": "fedpark.contracts.model",
    "ColumnRole": "fedpark.contracts.model",
    "ColumnRules": "fedpark.contracts.model",
    "Contract": "fedpark.contracts.model",
    "ContractError": "fedpark.contracts.errors",
    "ContractFormatError": "fedpark.contracts.errors",
    "ContractInvalidError": "fedpark.contracts.errors",
    "DataError": "fedpark.contracts.errors",
    "DataProfile": "fedpark.contracts.report",
    "Declaration": "fedpark.contracts.report",
    "Domain": "fedpark.contracts.model",
    "SignatureError": "fedpark.contracts.errors",
    "UnreadableDataError": "fedpark.contracts.errors",
    "UsagePolicy": "fedpark.contracts.model",
    "ValidationReport": "fedpark.contracts.report",
    "ValidationResult": "fedpark.contracts.validate",
    "canonical_json": "fedpark.contracts.document",
    "contract_from_data": "fedpark.contracts.document",
    "contract_sha256": "fedpark.contracts.document",
    "dump_yaml": "fedpark.contracts.document",
    "load_contract": "fedpark.contracts.document",
    "parse_document": "fedpark.contracts.document",
    "save_contract": "fedpark.contracts.document",
    "validate_file": "fedpark.contracts.validate",
    "validate_table": "fedpark.contracts.validate",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "Column",
    "ColumnRole",
    "ColumnRules",
    "Contract",
    "ContractError",
    "ContractFormatError",
    "ContractInvalidError",
    "DataError",
    "DataProfile",
    "Declaration",
    "Domain",
    "SignatureError",
    "UnreadableDataError",
    "UsagePolicy",
    "ValidationReport",
    "ValidationResult",
    "canonical_json",
    "contract_from_data",
    "contract_sha256",
    "dump_yaml",
    "load_contract",
    "parse_document",
    "save_contract",
    "validate_file",
    "validate_table",
]
