"""A malformed contract is refused naming the exact field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from samples import contract_data

from fedpark.contracts import (
    Contract,
    ContractFormatError,
    ContractInvalidError,
    canonical_json,
    contract_from_data,
    contract_sha256,
    parse_document,
)


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(contract_data())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        (["columns", 2, "type"], "float33", "columns.2.type", "unknown type"),
        (["columns", 1, "rules", "regex"], "press-(", "columns.1.rules.regex", "invalid regular"),
        (["columns", 2, "rules", "max"], -5, "columns.2.rules.max", "smaller than min"),
        (["columns", 3, "name"], "temp", "columns", "duplicate column name 'temp'"),
        (["version"], "1.0", "version", "must be a semantic version MAJOR.MINOR.PATCH"),
        (["id"], "Press Sensors", "id", "must be lowercase letters (a-z), digits and dashes"),
        (["columns", 1, "rules", "min"], 3, "columns.1", "min/max applies to numbers"),
        (["columns", 2, "rules", "allowed_values"], ["hot"], "columns.2", "not a valid float"),
        (["columns", 0, "role"], "secret", "columns.0.role", "must be one of: feature, label"),
        (["rows", "max_rows"], 10, "rows.max_rows", "smaller than min_rows"),
        (["policy", "min_factories"], 0, "policy.min_factories", "must be at least 1"),
        (["columns", 2, "colour"], "red", "columns.2.colour", 'unknown key "colour"'),
    ],
)
def test_malformed_contract_names_the_field(
    path: list[Any], value: Any, field: str, message: str
) -> None:
    with pytest.raises(ContractInvalidError) as caught:
        contract_from_data(_broken(path, value))
    problem = caught.value.problems[0]
    assert problem.field == field
    assert message in problem.message


def test_documents_must_be_mappings_of_sane_size() -> None:
    with pytest.raises(ContractFormatError, match="mapping"):
        parse_document("- a\n- b\n")
    with pytest.raises(ContractFormatError, match="not valid YAML"):
        parse_document("id: [unclosed")
    with pytest.raises(ContractFormatError, match="larger than"):
        parse_document("x" * (5 * 1024 * 1024))


def test_canonical_form_is_stable_and_complete(contract: Contract) -> None:
    reordered = Contract.model_validate(dict(reversed(list(contract_data().items()))))
    assert canonical_json(reordered) == canonical_json(contract)
    assert b'"finite":false' in canonical_json(contract)  # defaults are part of the hash
    changed = contract.model_copy(update={"title": "Other"})
    assert contract_sha256(changed) != contract_sha256(contract)


def test_model_columns_exclude_id_and_pii(contract: Contract) -> None:
    names = {c.name for c in contract.model_columns}
    assert "serial" not in names and "operator" not in names
    assert {"ts", "temp", "fault"} <= names


@pytest.mark.parametrize(
    ("dtype", "low", "high", "accepted"),
    [
        ("uint64", 0, 2**64 - 1, True),
        ("uint64", 0, 2**64, False),
        ("uint64", -1, 5, False),
        ("int64", -(2**63), 2**63 - 1, True),
        ("int64", 0, 2**63, False),
        ("uint8", 0, 256, False),
    ],
)
def test_integer_bounds_are_checked_against_the_columns_own_type(
    dtype: str, low: int, high: int, accepted: bool
) -> None:
    """A uint64 bound past 2^63 was refused: it was read as an int64 before the cast."""
    data = copy.deepcopy(contract_data())
    data["columns"].append(
        {"name": "counter", "type": dtype, "role": "feature", "rules": {"min": low, "max": high}}
    )
    if accepted:
        rules = contract_from_data(data).column("counter").rules
        assert (rules.min, rules.max) == (low, high)
    else:
        with pytest.raises(ContractInvalidError) as err:
            contract_from_data(data)
        assert f"is not a valid {dtype} value" in str(err.value)


@pytest.mark.parametrize(
    ("dtype", "values", "bad"),
    [
        ("uint8", [*range(256), 256], "256"),  # one conversion fails; the culprit is named
        ("uint64", [0, 2**64 - 1, -1], "-1"),
        ("int8", [1, True], "True"),  # a bool is no integer code
        ("string", ["ok", "\ud800"], "'\\ud800'"),  # JSON's lone surrogate: not UTF-8
        ("int32", ["7"], "'7'"),
    ],
)
def test_a_listed_value_that_is_not_of_the_column_type_is_named(
    dtype: str, values: list[Any], bad: str
) -> None:
    data = copy.deepcopy(contract_data())
    rules = {"allowed_values": values}
    data["columns"].append({"name": "code", "type": dtype, "role": "feature", "rules": rules})
    with pytest.raises(ContractInvalidError) as refused:
        contract_from_data(data)
    assert refused.value.problems[0].message.startswith(
        f"rules.allowed_values: {bad} is not a valid {dtype} value"
    ), refused.value.problems[0].message


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        ("uint64", [0, 2**64 - 1]),
        ("int8", [-128, 127]),
        ("string", ["a", "ü", "東京"]),
        ("dictionary<int8, string>", ["low", "high"]),
        ("list<int16>", [1, 2]),
        ("float32", [1, 2.5]),
        ("timestamp[ms]", ["2024-01-01T00:00:00"]),
    ],
)
def test_listed_values_of_the_column_type_are_kept(dtype: str, values: list[Any]) -> None:
    data = copy.deepcopy(contract_data())
    rules = {"allowed_values": values}
    data["columns"].append({"name": "code", "type": dtype, "role": "feature", "rules": rules})
    assert contract_from_data(data).column("code").rules.allowed_values == values


def test_a_contract_lists_at_most_200000_allowed_values_in_all() -> None:
    """Each column may list 10 000; the whole contract 200 000, so that every valid contract
    is a body the hub parses cheaply."""
    data = copy.deepcopy(contract_data())
    codes = [str(i) for i in range(10_000)]
    data["columns"] += [
        {"name": f"code_{i}", "type": "string", "rules": {"allowed_values": codes}}
        for i in range(21)
    ]
    with pytest.raises(ContractInvalidError) as refused:
        contract_from_data(data)
    assert "allowed values in all; a contract holds at most 200000" in str(refused.value)
    data["columns"] = data["columns"][:-2]  # the sample's own few, and 19 lists of 10 000
    assert len(contract_from_data(data).columns) == len(contract_data()["columns"]) + 19
