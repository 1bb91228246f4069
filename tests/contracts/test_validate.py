"""The validator: passes good data, fails broken data with counts and rows, never values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from samples import sensor_table

from fedpark.contracts import Contract, UnreadableDataError, validate_file, validate_table
from fedpark.contracts.errors import ReadProblem, UnsupportedDataError


def _with(table: pa.Table, name: str, values: list | np.ndarray, dtype=None) -> pa.Table:  # type: ignore[no-untyped-def,type-arg]
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values, dtype))


def test_good_file_passes_with_a_profile(contract: Contract, good_parquet: Path) -> None:
    result = validate_file(contract, good_parquet, batch_rows=1000)  # several batches
    report = result.report
    assert report.passed, report.model_dump()
    assert report.rows == 5000 and report.format == "parquet"
    assert report.rules_checked == 17
    profile = result.profile
    temp = profile.column("temp").numeric
    assert temp is not None and 55 < temp.mean < 65 and 4 < temp.std < 6  # type: ignore[operator]
    assert profile.column("pressure").null_fraction == pytest.approx(0.02, abs=0.01)
    assert set(profile.column("machine").categories or {}) == {"press-1", "press-2", "press-3"}
    assert {c.name for c in profile.columns} >= {"serial", "operator"}
    assert profile.column("operator").categories is None  # pii: nothing but null fraction
    assert profile.column("serial").numeric is None


def test_batches_do_not_change_the_profile(contract: Contract, good_parquet: Path) -> None:
    one = validate_file(contract, good_parquet, batch_rows=10_000).profile
    many = validate_file(contract, good_parquet, batch_rows=333).profile
    a, b = one.column("temp").numeric, many.column("temp").numeric
    assert a and b and a.mean == pytest.approx(b.mean) and a.std == pytest.approx(b.std)


def test_broken_file_fails_with_rule_counts_and_rows(contract: Contract, tmp_path: Path) -> None:
    table = sensor_table()
    temp = table["temp"].to_numpy().copy()
    temp[[5, 9]] = 517.25
    temp[77] = np.nan
    serial = table["serial"].to_numpy().copy()
    serial[10] = 3
    machine = table["machine"].to_pylist()
    machine[42] = "lathe-7"
    ts = table["ts"].cast(pa.int64()).to_numpy().copy()
    ts[100] = ts[99]
    table = _with(table, "temp", temp)
    table = _with(table, "serial", serial)
    table = _with(table, "machine", machine)
    table = _with(table, "ts", ts, pa.timestamp("ms", tz="UTC"))
    path = tmp_path / "broken.parquet"
    pq.write_table(table, path)

    report = validate_file(contract, path, batch_rows=64).report
    assert not report.passed
    found = {(v.column, v.rule): v for v in report.violations}
    assert found["temp", "max"].count == 2 and found["temp", "max"].first_rows == [5, 9]
    assert found["temp", "finite"].first_rows == [77]
    assert found["serial", "unique"].count == 2 and found["serial", "unique"].first_rows == [3, 10]
    assert found["machine", "allowed_values"].first_rows == [42]
    assert found["machine", "regex"].first_rows == [42]
    assert found["ts", "monotonic"].first_rows == [100]
    assert report.rule_counts()["max"] == 2
    text = report.model_dump_json()
    assert "lathe-7" not in text and "517" not in text  # no values, only counts and rows


def test_a_missing_column_fails_and_is_never_filled(contract: Contract, tmp_path: Path) -> None:
    path = tmp_path / "less.parquet"
    pq.write_table(
        sensor_table()
        .drop_columns(["pressure"])
        .append_column("secret_recipe", pa.array(["x"] * 5000)),
        path,
    )
    report = validate_file(contract, path).report
    assert not report.passed
    kinds = {(d.column, d.kind) for d in report.schema_differences}
    assert kinds == {("pressure", "missing"), ("secret_recipe", "extra")}
    assert report.rule_counts() == {"schema.missing": 1}


def test_types_widen_but_never_narrow(contract: Contract, tmp_path: Path) -> None:
    table = sensor_table()
    widened = _with(table, "fault", table["fault"].cast(pa.int8()))
    narrowed = _with(table, "serial", table["serial"].cast(pa.float64()))
    for name, data in (("w", widened), ("n", narrowed)):
        pq.write_table(data, tmp_path / f"{name}.parquet")
    ok = validate_file(contract, tmp_path / "w.parquet").report
    assert ok.passed and ok.schema_differences[0].kind == "widened"
    bad = validate_file(contract, tmp_path / "n.parquet").report
    assert not bad.passed and bad.schema_differences[0].kind == "type"


def test_nulls_and_row_bounds(contract: Contract) -> None:
    table = sensor_table(rows=50)
    pressure = [None] * 10 + table["pressure"].to_pylist()[10:]
    machine = [None, *table["machine"].to_pylist()[1:]]
    table = _with(_with(table, "pressure", pressure, pa.float64()), "machine", machine)
    report = validate_table(contract, table).report
    rules = {(v.column, v.rule) for v in report.violations}
    assert rules == {("pressure", "max_null_fraction"), ("machine", "not_null"), (None, "min_rows")}


def test_ipc_feather_and_csv_validate_too(contract: Contract, tmp_path: Path) -> None:
    table = sensor_table()
    feather.write_feather(table, tmp_path / "d.feather")
    with ipc.new_stream(tmp_path / "d.arrows", table.schema) as writer:
        writer.write_table(table, max_chunksize=700)
    for name in ("d.feather", "d.arrows"):
        assert validate_file(contract, tmp_path / name).report.passed
    flat = table.drop_columns(["window"])
    pacsv.write_csv(flat, tmp_path / "d.csv")
    report = validate_file(contract, tmp_path / "d.csv").report
    assert not report.passed  # CSV cannot hold the list column
    assert [(d.column, d.kind) for d in report.schema_differences] == [("window", "missing")]
    flat_contract = contract.model_copy(update={"columns": contract.columns[:-1]})
    assert validate_file(flat_contract, tmp_path / "d.csv").report.passed


def test_csv_cell_of_the_wrong_type_is_reported_without_its_value(
    contract: Contract, tmp_path: Path
) -> None:
    flat_contract = contract.model_copy(update={"columns": contract.columns[:-1]})
    path = tmp_path / "bad.csv"
    pacsv.write_csv(sensor_table().drop_columns(["window"]), path)
    lines = path.read_text().splitlines()
    cells = lines[3].split(",")
    cells[2] = "SECRET-TEXT"
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    report = validate_file(flat_contract, path).report
    assert not report.passed
    assert report.schema_differences[0].column == "temp"
    [where] = report.violations  # which row to fix: line 4 of the file is data row 2
    assert (where.column, where.rule, where.first_rows) == ("temp", "type", [2])
    assert "SECRET-TEXT" not in report.model_dump_json()


@pytest.mark.parametrize("kind", ["truncated", "garbage", "empty", "half-ipc", "unknown"])
def test_unreadable_input_is_a_clear_error(
    contract: Contract, good_parquet: Path, tmp_path: Path, kind: str
) -> None:
    data = good_parquet.read_bytes()
    feather.write_feather(sensor_table(), tmp_path / "ok.feather")
    files = {
        "truncated": ("t.parquet", data[: len(data) // 2]),
        "garbage": ("g.parquet", b"\x00garbage" * 100),
        "empty": ("e.parquet", b""),
        "half-ipc": ("h.feather", (tmp_path / "ok.feather").read_bytes()[:3000]),
        "unknown": ("u.xlsx", b"PK\x03\x04 spreadsheet"),
    }
    name, content = files[kind]
    path = tmp_path / name
    path.write_bytes(content)
    error = UnsupportedDataError if kind == "unknown" else UnreadableDataError
    with pytest.raises(error) as caught:
        validate_file(contract, path)
    assert name in str(caught.value) and "\n" not in str(caught.value)


def test_corrupted_page_is_caught_by_its_checksum(contract: Contract, tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    pq.write_table(sensor_table(), path, compression="none", write_page_checksum=True)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(UnreadableDataError, match="damaged page") as caught:
        validate_file(contract, path)
    assert caught.value.failure.problem is ReadProblem.CORRUPT_PAGE


def test_fast_paths_never_hide_a_violation(contract: Contract) -> None:
    """NaN beside an out-of-range value; integer codes outside their allowed run."""
    table = sensor_table(rows=200)
    temp = table["temp"].to_numpy().copy()
    temp[3], temp[4] = np.nan, -5.0
    fault = table["fault"].to_numpy().copy()
    fault[6] = 9
    table = _with(_with(table, "temp", temp), "fault", fault)
    found = {
        (v.column, v.rule): v.first_rows for v in validate_table(contract, table).report.violations
    }
    assert found[("temp", "min")] == [4]
    assert found[("temp", "finite")] == [3]
    assert found[("fault", "allowed_values")] == [6]


def test_categories_seen_fewer_than_k_times_are_suppressed_not_named(contract: Contract) -> None:
    """A profile names a category only if at least k rows hold it: a rare value (a one-off
    machine, a single supplier's batch) is counted, never named."""
    table = sensor_table(rows=200)
    machines = table["machine"].to_pylist()
    machines[:3] = ["press-9-RARE"] * 3  # allowed by the regex, seen 3 times
    table = _with(table, "machine", machines)
    data = contract.model_dump(mode="json")
    data["columns"][1]["rules"]["allowed_values"] = None  # the regex still holds
    relaxed = Contract.model_validate(data)
    profile = validate_table(relaxed, table, min_category_count=10).profile.column("machine")
    assert profile.categories is not None and "press-9-RARE" not in profile.categories
    assert profile.suppressed_categories == 3
    assert sum(profile.categories.values()) == 197
    assert "press-9-RARE" not in validate_table(relaxed, table).profile.model_dump_json()


def test_a_declaration_carries_no_single_reading(contract: Contract) -> None:
    """A column's minimum and maximum are one row's readings each: a declaration sends them
    rounded outward (a bound that still holds every value); a mean of fewer than k values is
    close to those values, so such a column's statistics leave as a count alone."""
    table = sensor_table(rows=300)
    readings = [3.2111, 2.9777, 3.0333, 3.1555]  # four readings, k is 10
    table = _with(table, "pressure", readings + [None] * 296, pa.float64())
    result = validate_table(contract, table, min_category_count=10)
    temps = table["temp"].to_numpy()
    low, high = float(temps.min()), float(temps.max())
    exact = result.profile.column("temp").numeric
    assert exact is not None and (exact.min, exact.max) == (low, high)  # the local profile

    declared = result.declaration("line")
    shared = declared.profile.column("temp").numeric
    assert shared is not None and shared.min is not None and shared.max is not None
    assert shared.min <= low and shared.max >= high  # still a bound on every reading
    assert shared.min != low and shared.max != high
    assert float(f"{shared.min:.2g}") == shared.min and float(f"{shared.max:.2g}") == shared.max
    assert (shared.mean, shared.std, shared.count) == (exact.mean, exact.std, exact.count)
    few = declared.profile.column("pressure").numeric
    assert few is not None and few.model_dump(exclude_none=True) == {"count": 4}
    text = declared.model_dump_json()
    assert not any(repr(v) in text for v in (low, high, 3.2111, 2.9777, 3.0333, 3.1555))
    assert declared.report == result.report.shared()
