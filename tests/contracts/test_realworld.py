"""Files as real exports write them (tests/contracts/fixtures/realworld/, written by its
``write_fixtures.py`` with pyarrow, Polars, pandas and DuckDB): each one is drafted from,
validates against its own draft with no violation and is declared with a profile of every
column; a type no contract holds is refused in one line naming the column and the type."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from fedpark.contracts import ContractError, validate_file, validate_table
from fedpark.contracts.errors import DataError, ReadProblem
from fedpark.contracts.infer import infer_contract, infer_draft
from fedpark.contracts.model import Contract

FIXTURES = Path(__file__).parent / "fixtures" / "realworld"
REFUSED = {
    "refused_union.arrow": "dense_union",
    "refused_interval.arrow": "month_day_nano_interval",
    "refused_run_end_encoded.arrow": "run_end_encoded",
    "refused_list_view.arrow": "list_view",
}
READABLE = sorted(
    p.name
    for p in FIXTURES.iterdir()
    if p.suffix != ".py" and p.name not in REFUSED and p.name != "encrypted.parquet"
)


def _draft(name: str) -> Contract:
    return infer_contract(FIXTURES / name, contract_id="real-world", owner="acme")


def test_every_fixture_is_there() -> None:
    # The writers' files: a missing one means write_fixtures.py changed without its files.
    for name in ("polars.parquet", "polars.arrow", "pandas.parquet", "duckdb.parquet"):
        assert name in READABLE
    assert len(READABLE) >= 18


@pytest.mark.parametrize("name", READABLE)
def test_a_file_validates_against_its_own_draft_and_is_declared(name: str) -> None:
    contract = _draft(name)
    result = validate_file(contract, FIXTURES / name)
    assert result.report.passed, (result.report.schema_differences, result.report.violations)
    assert result.report.violations == []
    declared = result.declaration("line-3")
    assert [c.name for c in declared.profile.columns] == [c.name for c in contract.columns]
    for column in contract.columns:
        assert result.profile.column(column.name).null_fraction <= 1


@pytest.mark.parametrize(("name", "shown"), sorted(REFUSED.items()))
def test_a_type_no_contract_holds_is_refused_in_one_line(name: str, shown: str) -> None:
    column = name.removeprefix("refused_").removesuffix(".arrow")
    with pytest.raises(ContractError) as refused:
        _draft(name)
    message = str(refused.value)
    assert "\n" not in message and "Traceback" not in message
    assert f"column {column!r}" in message and shown in message and "not supported" in message
    # A contract of the other columns reads the file: the column is an extra, never read.
    contract = Contract.model_validate(
        {
            "id": "real-world",
            "version": "0.1.0",
            "title": "t",
            "owner": "acme",
            "columns": [{"name": "ok", "type": "int64", "nullable": False}],
        }
    )
    report = validate_file(contract, FIXTURES / name).report
    assert report.passed
    assert [(d.column, d.kind) for d in report.schema_differences] == [(column, "extra")]
    assert shown in (report.schema_differences[0].found or "")


def test_encrypted_parquet_is_said_to_be_encrypted() -> None:
    with pytest.raises(DataError) as refused:
        _draft("encrypted.parquet")
    assert refused.value.failure.problem is ReadProblem.ENCRYPTED_PARQUET
    assert str(refused.value) == (
        "encrypted.parquet is encrypted Parquet: FedPark cannot read encrypted files; "
        "decrypt it first"
    )


def _types(name: str) -> dict[str, str]:
    return {c.name: c.type for c in _draft(name).columns}


def test_types_are_kept_as_the_file_has_them() -> None:
    assert _types("float16.parquet") == {"reading": "float16"}
    assert _types("decimals.arrow") == {
        "price": "decimal32(7, 2)",
        "weight": "decimal64(15, 3)",
        "amount": "decimal128(20, 4)",
        "big": "decimal256(45, 6)",
    }
    assert _types("binary.parquet") == {
        "sha256": "fixed_size_binary[32]",
        "id": "uuid",
        "tags": "map<string, int64>",
        "person": 'struct<"first-name": string, "first name": int32, "": bool>',
        "empty": "string",  # all empty: a draft guesses text, nullable
    }
    assert _types("views.arrow") == {"s": "string_view", "b": "binary_view", "x": "float64"}
    polars = _types("polars.arrow")
    assert polars["state"] == "string_view" and polars["ts"] == "timestamp[us, tz=UTC]"
    assert _types("pandas.parquet")["ts"] == "timestamp[us, tz=Europe/Berlin]"
    duckdb = _types("duckdb.parquet")
    assert duckdb["price"] == "decimal128(9, 2)" and duckdb["id"] == "fixed_size_binary[16]"


def test_names_and_values_padded_with_spaces_are_kept_exactly() -> None:
    for name in ("spaced.parquet", "spaced.csv"):
        contract = _draft(name)
        assert [c.name for c in contract.columns] == [" temp", "state ", "code"]
        assert contract.column("state ").rules.allowed_values == ["doing ", "done  ", "new   "]
        assert contract.column("code").rules.allowed_values == ["  A0", "  A1", "  A2", "  A3"]


def test_delta_encoded_text_with_allowed_values_is_read() -> None:
    contract = _draft("delta_strings.parquet")
    assert contract.column("state").rules.allowed_values == ["doing ", "done  ", "new   "]
    narrowed = contract.model_copy(
        update={
            "columns": [
                c.model_copy(
                    update={"rules": c.rules.model_copy(update={"allowed_values": ["new   "]})}
                )
                if c.name == "state"
                else c
                for c in contract.columns
            ]
        }
    )
    report = validate_file(narrowed, FIXTURES / "delta_strings.parquet").report
    assert [(v.column, v.rule, v.count) for v in report.violations] == [
        ("state", "allowed_values", 27)
    ]


def test_bounds_are_values_of_the_columns_type() -> None:
    rules = {c.name: c.rules for c in _draft("limits.parquet").columns}
    assert (rules["i32"].min, rules["i32"].max) == (-(2**31), 2**31 - 1)
    assert (rules["u8"].min, rules["u8"].max) == (0, 255)
    assert isinstance(rules["f64_big"].max, float) and rules["f64_big"].max >= 1e300
    assert (rules["f16"].min, rules["f16"].max) == (-65504.0, 65504.0)
    # Widened past what decimal(5, 2) holds: no bound; else bounds on its scale.
    assert (rules["d52"].min, rules["d52"].max) == (None, None)
    assert (rules["d52_mid"].min, rules["d52_mid"].max) == (12.3, 12.4)
    assert rules["d38"].max == 1_360_000_000_000_000_000


def test_a_legacy_ipc_stream_is_read() -> None:
    report = validate_file(_draft("legacy.arrows"), FIXTURES / "legacy.arrows").report
    assert report.format == "ipc-stream" and report.rows == 40


def test_a_view_typed_contract_reads_plain_text_and_back() -> None:
    contract = _draft("views.arrow")
    table = pa.table({"s": ["v0"], "b": [b"x"], "x": [1.0]})
    result = validate_table(contract, table)
    assert result.report.passed
    assert {d.kind for d in result.report.schema_differences} == {"widened"}


def _contract(columns: list[dict[str, object]]) -> Contract:
    return Contract.model_validate(
        {"id": "real-world", "version": "0.1.0", "title": "t", "owner": "acme", "columns": columns}
    )


def test_a_null_typed_column_validates_and_is_profiled() -> None:
    contract = _contract([{"name": "empty", "type": "null"}, {"name": "id", "type": "uuid"}])
    result = validate_file(contract, FIXTURES / "binary.parquet")
    assert result.report.passed
    assert result.profile.column("empty").null_fraction == 1.0
    assert result.declaration("line-3").profile.column("id").null_fraction == 0.0


def test_an_all_empty_column_is_drafted_with_a_note() -> None:
    draft = infer_draft([FIXTURES / "empty_column.csv"], contract_id="real-world", owner="acme")
    assert any("every value is empty" in note for note in draft.notes["notes"])


def test_a_long_type_difference_is_reported_not_raised(tmp_path: Path) -> None:
    wide = pa.struct([(f"field_number_{i}", pa.float64()) for i in range(60)])
    path = tmp_path / "wide.arrow"
    table = pa.table({"s": pa.array([None], wide)})
    with ipc.new_file(path, table.schema) as writer:
        writer.write_table(table)
    report = validate_file(_contract([{"name": "s", "type": "string"}]), path).report
    assert not report.passed
    found = report.schema_differences[0].found or ""
    assert 400 < len(found) <= 500 and found.endswith("…")
