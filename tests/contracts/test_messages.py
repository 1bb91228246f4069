"""A refused contract says what to fix in FedPark's words, at a place a person can find."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from samples import contract_data

from fedpark.contracts import (
    ContractFormatError,
    ContractInvalidError,
    contract_from_data,
    parse_document,
)
from fedpark.contracts.errors import MAX_PROBLEMS_SHOWN
from fedpark.contracts.messages import ordinal
from fedpark.contracts.validate import validate_file

SLUG_WORDS = (
    "must be lowercase letters (a-z), digits and dashes, starting and ending with a letter "
    "or digit, e.g. press-sensors"
)


def _refusal(data: dict[str, Any]) -> str:
    with pytest.raises(ContractInvalidError) as caught:
        contract_from_data(data)
    return str(caught.value)


def _yaml_refusal(text: str) -> str:
    with pytest.raises(ContractInvalidError) as caught:
        contract_from_data(parse_document(text), "c.yaml")
    return str(caught.value)


def _sample(**changes: Any) -> dict[str, Any]:
    return copy.deepcopy(contract_data()) | changes


def test_a_slug_pattern_is_explained_in_words() -> None:
    assert _refusal(_sample(id="Press_Sensors")) == f"contract: id: {SLUG_WORDS}"


def test_a_column_is_named_by_its_name_and_place_not_its_index() -> None:
    columns = [{"name": f"xmeas_{i}", "type": "float32"} for i in range(1, 58)]
    columns[56]["role"] = "sensor"
    assert _refusal(_sample(columns=columns)) == (
        'contract: column "xmeas_57" (57th): role: must be one of: feature, label, time, id, pii'
    )


def test_an_unknown_key_next_to_a_missing_one_is_reported_as_the_typo() -> None:
    data = _sample()
    data["columns"][3] = {"name": "pressure", "tpye": "float64"}
    assert _refusal(data) == (
        'contract: column "pressure" (4th): unknown key "tpye" (did you mean "type"?)'
    )


def test_an_unknown_key_alone_gets_the_closest_field_or_the_known_ones() -> None:
    data = _sample()
    data["columns"][0]["rules"] = {"allowed_value": [1]}
    assert _refusal(data) == (
        'contract: column "ts" (1st): rules: unknown key "allowed_value" (did you mean '
        '"allowed_values"?)'
    )
    data["columns"][0]["rules"] = {"max_value": 3}
    assert _refusal(data) == (
        'contract: column "ts" (1st): rules: unknown key "max_value" (known keys: min, max, '
        "allowed_values, regex, max_null_fraction, finite, unique, monotonic)"
    )


def test_every_problem_is_shown_not_the_first_and_a_count() -> None:
    data = _sample(id="Bad_ID", version=0.1)
    data["columns"][1]["tpye"] = data["columns"][1].pop("type")
    assert _refusal(data) == (
        "contract has 3 problems:\n"
        '  - column "machine" (2nd): unknown key "tpye" (did you mean "type"?)\n'
        f"  - id: {SLUG_WORDS}\n"
        "  - version: versions are semantic versions (MAJOR.MINOR.PATCH): write 0.1.0, not "
        '0.1 (quote it in YAML if needed: version: "0.1.0")'
    )


def test_many_problems_are_listed_up_to_a_bound() -> None:
    columns = [{"name": f"c{i}", "type": "float32", "role": "x"} for i in range(25)]
    lines = _refusal(_sample(columns=columns)).splitlines()
    assert lines[0] == "contract has 25 problems:"
    assert len(lines) == 1 + MAX_PROBLEMS_SHOWN + 1
    assert lines[-1] == f"  ... and {25 - MAX_PROBLEMS_SHOWN} more of the same kinds"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "version: 0.1",
            "version: versions are semantic versions (MAJOR.MINOR.PATCH): write 0.1.0, not "
            '0.1 (quote it in YAML if needed: version: "0.1.0")',
        ),
        (
            "version: 2",
            "version: versions are semantic versions (MAJOR.MINOR.PATCH): write 2.0.0, not "
            '2 (quote it in YAML if needed: version: "2.0.0")',
        ),
        ("id: 123", 'id: must be text, not the number 123: quote it in YAML (id: "123")'),
        (
            "title: 2024",
            'title: must be text, not the number 2024: quote it in YAML (title: "2024")',
        ),
        (
            "title: no",
            "title: must be text, not true/false (YAML reads yes, no, on, off as those): quote it",
        ),
    ],
)
def test_a_number_where_text_belongs_says_to_write_text(line: str, message: str) -> None:
    key = line.split(":")[0]
    document = "\n".join(
        [line]
        + [
            f"{k}: {v}"
            for k, v in {"id": "press", "version": "1.0.0", "title": "T"}.items()
            if k != key
        ]
        + ["owner: acme", "columns:", "  - {name: a, type: float32}"]
    )
    assert _yaml_refusal(document) == f"c.yaml: {message}"


def test_a_column_without_a_usable_name_is_named_by_its_place() -> None:
    columns = [{"name": 5, "type": "float32"}]
    assert _refusal(_sample(columns=columns)) == (
        'contract: column (1st): name: must be text, not the number 5: quote it in YAML (name: "5")'
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "Bad"},
        {"version": 1.5},
        {"columns": [{"name": "a", "type": "float32", "rules": {"min": [1]}}]},
        {"columns": [{"name": "a", "typo": "float32"}]},
        {"policy": {"min_factories": "a", "expires": "x", "experiment_orgs": [1]}},
        {"rows": {"min_rows": -1}},
        {"columns": []},
        {"columns": "a"},
    ],
)
def test_no_message_is_pydantic_text(changes: dict[str, Any]) -> None:
    said = _refusal(_sample(**changes))
    for words in (
        "errors.pydantic.dev",
        "Input should",
        "Field required",
        "should match",
        "Extra inputs",
        "valid string",
        "(and ",
    ):
        assert words not in said


def test_ordinals() -> None:
    said = [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 56, 57, 101, 111)]
    assert said == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "56th",
        "57th",
        "101st",
        "111th",
    ]


def test_a_csv_cell_of_another_type_names_column_type_and_row(tmp_path: Path) -> None:
    contract = contract_from_data(
        {
            "id": "press",
            "version": "1.0.0",
            "title": "T",
            "owner": "acme",
            "columns": [{"name": "a", "type": "float32"}, {"name": "b", "type": "int64"}],
        }
    )
    path = tmp_path / "plant.csv"
    path.write_text("a,b\n1,2\n1.5,3\nx,4\n")
    report = validate_file(contract, path).report
    assert not report.passed
    assert report.unreadable_cell() == (
        'column "a": row 2 (line 4 of the file) holds a value that is not float32; reading '
        "stopped there, so no rule was checked: fix that cell, or change the column's type in "
        "the contract"
    )
    path.write_text("a,b\n1,2\n")
    assert validate_file(contract, path).report.unreadable_cell() is None


@pytest.mark.parametrize(
    ("regex", "message"),
    [
        (
            "press-(",
            "invalid regular expression at character 7: check its brackets, parentheses and "
            "escapes",
        ),
        (
            "(?<=press-)[0-9]+",
            "invalid regular expression for RE2, which checks the data: no look-arounds (?=, "
            "?!, ?<=) or back-references (\\1)",
        ),
    ],
)
def test_a_regex_that_cannot_be_used_says_why_in_fedpark_words(regex: str, message: str) -> None:
    data = _sample()
    data["columns"][1]["rules"] = {"regex": regex}
    assert _refusal(data) == f'contract: column "machine" (2nd): rules.regex: {message}'


def test_a_decimal_out_of_range_says_the_limits() -> None:
    data = _sample()
    data["columns"][2]["type"] = "decimal128(50, 2)"
    data["columns"][2]["rules"] = {}
    assert _refusal(data) == (
        'contract: column "temp" (3rd): type: invalid decimal128(50, 2): precision from 1 to 38, '
        "scale at most the precision"
    )


def test_a_document_that_is_not_yaml_says_where_and_what_to_check() -> None:
    with pytest.raises(ContractFormatError) as caught:
        parse_document("id: press\ntitle: Press: line 3\n", "c.yaml")
    assert str(caught.value) == (
        "c.yaml is not valid YAML or JSON (line 2, column 13): check the indentation, the "
        "colons and the brackets there, and quote text that holds a colon"
    )
