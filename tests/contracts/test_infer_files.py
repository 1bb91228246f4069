"""Drafting one contract from every plant's file: identities become id columns, allowed
values and ranges cover every plant, and the YAML says what was guessed and why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from fedpark.contracts import contract_from_data, validate_file
from fedpark.contracts.draft import render_yaml
from fedpark.contracts.infer import InferError, data_files, infer_contract, infer_draft

MODES = {"plant-1": "mode1", "plant-2": "mode2", "plant-3": "mode3"}


def _plant(name: str, seed: int, rows: int = 60) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "time": pa.array(np.arange(rows) * 1000 + seed, pa.timestamp("ms", tz="UTC")),
            "plant": [name] * rows,
            "run": [f"{name}/run-{i // 20}" for i in range(rows)],
            "operating_mode": [MODES[name]] * rows,
            "grade": [f"g{(i + seed) % 2}" for i in range(rows)],
            "flow": rng.uniform(0.01, 2.0 + seed, rows),  # never negative
            "temp": rng.normal(20 * seed, 3, rows),
            "level": pa.array(rng.integers(200, 256, rows), pa.uint8()),
            "operator": [f"Kim {i % 4}" for i in range(rows)],
            "fault": pa.array(rng.integers(0, seed + 1, rows), pa.int8()),
        }
    )


@pytest.fixture
def plants(tmp_path: Path) -> list[Path]:
    paths = []
    for seed, name in enumerate(MODES, start=1):
        (tmp_path / name).mkdir()
        pq.write_table(_plant(name, seed), tmp_path / name / "line.parquet")
        paths.append(tmp_path / name / "line.parquet")
    (tmp_path / "plants.json").write_text("{}")  # not data: a folder's other files are skipped
    (tmp_path / ".fedpark").mkdir()  # a factory's work dir is hidden
    pq.write_table(_plant("plant-1", 9), tmp_path / ".fedpark" / "cache.parquet")
    return paths


def test_a_draft_from_every_plant_meets_every_plant(plants: list[Path]) -> None:
    draft = infer_draft([plants[0].parent.parent], contract_id="line", owner="acme")
    assert [f.name for f in draft.files] == [f"{p}/line.parquet" for p in MODES]
    contract = draft.contract
    roles = {c.name: c.role.value for c in contract.columns}
    assert roles == {
        "time": "time",
        "plant": "id",
        "run": "id",
        "operating_mode": "feature",
        "grade": "feature",
        "flow": "feature",
        "temp": "feature",
        "level": "feature",
        "operator": "pii",
        "fault": "label",
    }
    rules = {c.name: c.rules for c in contract.columns}
    assert rules["plant"].allowed_values is None and rules["run"].allowed_values is None
    assert rules["operating_mode"].allowed_values == ["mode1", "mode2", "mode3"]
    assert rules["flow"].min == 0  # never negative: the margin stops at 0
    assert rules["level"].max == 255  # the margin stops at uint8's limit
    assert rules["temp"].min is not None and rules["temp"].min < 20 < 60 < rules["temp"].max
    for path in plants:
        report = validate_file(contract, path).report
        assert report.passed and not report.violations, report


def test_a_draft_from_one_plant_keeps_identities_out_of_the_features(plants: list[Path]) -> None:
    contract = infer_contract(plants[0], contract_id="line", owner="acme")
    columns = {c.name: c for c in contract.columns}
    assert columns["plant"].role.value == "id" and columns["run"].role.value == "id"
    assert columns["operating_mode"].rules.allowed_values is None  # one value is no category set
    assert columns["grade"].rules.allowed_values == ["g0", "g1"]


def test_files_are_told_apart_by_their_data_without_telling_names(tmp_path: Path) -> None:
    """A column constant in each file and different in every file is the file's identity;
    one whose values no two files share keys each file's series."""
    paths = []
    for i in range(3):
        table = pa.table(
            {"werk": [f"W{i}"] * 4, "charge": [f"C{i}-{j % 2}" for j in range(4)], "x": [1.0] * 4}
        )
        paths.append(tmp_path / f"w{i}.parquet")
        pq.write_table(table, paths[-1])
    draft = infer_draft(paths, contract_id="werke", owner="acme")
    assert [c.role.value for c in draft.contract.columns] == ["id", "id", "feature"]
    assert draft.notes["werk"] == [
        "role id: one value per file: constant per file, differs across files (W0..W2): it "
        "tells the files apart"
    ]
    assert draft.notes["charge"] == [
        "role id: a key of each file's series: 6 values, none in two files; an experiment "
        "may name it as its series (windows never span two)"
    ]
    x = draft.contract.column("x").rules
    assert (x.min, x.max) == (0.9, 1.1)  # one value: 10% of it either side


def test_ranges_can_be_left_to_the_steward(plants: list[Path]) -> None:
    draft = infer_draft(plants, contract_id="line", owner="acme", ranges=False)
    assert all(c.rules.min is None and c.rules.max is None for c in draft.contract.columns)
    assert "ranges: left out (--no-ranges)" in render_yaml(draft)


def test_the_yaml_says_what_was_guessed_and_why(plants: list[Path]) -> None:
    draft = infer_draft(plants, contract_id="line", owner="acme")
    text = render_yaml(draft)
    assert contract_from_data(yaml.safe_load(text)) == draft.contract
    lines = text.splitlines()
    assert lines[:4] == [
        "# Drafted by `fedpark contract infer` from 3 files, 180 rows:",
        "# - plant-1/line.parquet (60 rows)",
        "# - plant-2/line.parquet (60 rows)",
        "# - plant-3/line.parquet (60 rows)",
    ]
    assert "# - units: the data does not say them; give every measured column its unit" in lines
    at = lines.index("- name: plant")
    assert lines[at - 2 : at] == [
        "# role id: its name says it identifies a plant: constant per file, differs across files",
        "#   (plant-1..plant-3)",
    ]
    at = lines.index("- name: operating_mode")
    assert lines[at - 1] == "# allowed_values: the 3 values seen in the 3 files"
    assert "Kim" not in text  # a pii column's values are in no rule and no comment


def test_files_must_share_their_columns(tmp_path: Path, plants: list[Path]) -> None:
    other = tmp_path / "other.parquet"
    pq.write_table(_plant("plant-1", 1).drop_columns(["grade", "level"]), other)
    with pytest.raises(InferError) as raised:
        infer_draft([plants[0], other], contract_id="line", owner="acme")
    assert str(raised.value) == (
        "other.parquet does not have the columns of plant-1/line.parquet: it lacks 'grade', "
        "'level'; infer from files that share their columns"
    )
    retyped = tmp_path / "retyped.parquet"
    table = _plant("plant-1", 1)
    pq.write_table(table.set_column(4, "grade", pa.array([1] * table.num_rows)), retyped)
    with pytest.raises(InferError) as raised:
        infer_draft([plants[0], retyped], contract_id="line", owner="acme")
    assert str(raised.value) == (
        "retyped.parquet does not have the columns of plant-1/line.parquet: column 'grade' is "
        "int64 there, string in plant-1/line.parquet"
    )


def test_csv_columns_typed_differently_by_file_share_one_type(tmp_path: Path) -> None:
    whole, decimals = tmp_path / "a.csv", tmp_path / "b.csv"
    whole.write_text("x;note\n1;\n2;\n")
    decimals.write_text("x;note\n1,5;ok\n2,5;ok\n")
    contract = infer_contract([whole, decimals], contract_id="xs", owner="acme")
    assert [(c.name, c.type) for c in contract.columns] == [("x", "float64"), ("note", "string")]
    assert all(validate_file(contract, p).report.passed for p in (whole, decimals))


def test_a_folder_without_data_is_named(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("no data")
    with pytest.raises(InferError) as raised:
        data_files([tmp_path])
    assert str(raised.value) == f"{tmp_path} holds no data file (Parquet, Arrow IPC/Feather or CSV)"


@pytest.mark.parametrize(
    ("dtype", "values", "bounds"),
    [
        (pa.int8(), [100, 127], (97, 127)),
        (pa.uint8(), [0, 250], (0, 255)),
        (pa.int64(), [2**62, 2**63 - 1], (4.15e18, 2**63 - 1)),
        # Past int64: a bound built through int64 first overflowed and the draft was refused.
        (pa.uint64(), [0, 2**63 - 2, 5], (0, 1.02e19)),
        (pa.uint64(), [2**63, 2**64 - 1], (8.3e18, 2**64 - 1)),
        (pa.float32(), [-3.0e38, 3.0e38], (-3.4028234663852886e38, 3.4028234663852886e38)),
    ],
)
def test_ranges_never_pass_the_types_limits(
    tmp_path: Path, dtype: pa.DataType, values: list, bounds: tuple
) -> None:
    path = tmp_path / "limits.parquet"
    pq.write_table(pa.table({"v": pa.array(values, dtype)}), path)
    contract = infer_contract(path, contract_id="limits", owner="acme")
    rules = contract.column("v").rules
    assert (rules.min, rules.max) == pytest.approx(bounds, rel=1e-3)
    assert validate_file(contract, path).report.passed


def test_a_label_of_integer_codes_gets_its_classes_not_a_range(tmp_path: Path) -> None:
    """Fault codes 0, 1, 2, 4, 5: a range 0..6 would let 3 and 6 pass as classes."""
    data = tmp_path / "line.parquet"
    codes = [0, 1, 2, 4, 5] * 20
    pq.write_table(
        pa.table({"fault": pa.array(codes, pa.int8()), "temp": np.linspace(1, 2, 100)}), data
    )
    draft = infer_draft([data], contract_id="line", owner="acme")
    fault = next(c for c in draft.contract.columns if c.name == "fault")
    assert fault.role.value == "label"
    assert fault.rules.allowed_values == [0, 1, 2, 4, 5]
    assert fault.rules.min is None and fault.rules.max is None
    assert validate_file(draft.contract, data).report.passed
