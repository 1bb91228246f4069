"""Dataset contracts: Arrow schemas, value rules and usage policies.

Imports no other FedPark package; the hub and the factory client both build on it.
"""

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
from fedpark.contracts.model import Column, ColumnRole, ColumnRules, Contract, Domain, UsagePolicy
from fedpark.contracts.report import DataProfile, Declaration, ValidationReport
from fedpark.contracts.validate import ValidationResult, validate_file, validate_table

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
