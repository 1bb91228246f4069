"""Prediction: the same inputs the factories trained on, refusals that write nothing, bad
rows skipped only when asked, temporal windows that cross batches and never series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from modelfolders import line_table, model_folder

from fedpark.experiments.features import FeaturePlan, encode_series, model_arrays
from fedpark.experiments.serving.folder import ModelFolder, open_model
from fedpark.experiments.serving.network import forward, load_network
from fedpark.experiments.serving.predict import PredictionError, PredictOptions, predict_file


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> ModelFolder:
    return open_model(model_folder(tmp_path_factory.mktemp("m") / "mlp", epochs=8))


@pytest.fixture(scope="module")
def tcnn(tmp_path_factory: pytest.TempPathFactory) -> ModelFolder:
    return open_model(model_folder(tmp_path_factory.mktemp("t") / "tcnn", kind="tcnn", epochs=4))


def _write(table: pa.Table, path: Path) -> Path:
    if path.suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


def test_mlp_predictions_are_the_networks_on_the_training_inputs(
    mlp: ModelFolder, tmp_path: Path
) -> None:
    table = line_table(1000, seed=3)
    out = tmp_path / "p.parquet"
    summary = predict_file(mlp, _write(table, tmp_path / "d.parquet"), out)
    got = pq.read_table(out)
    assert got.column_names[:4] == ["row", "ts", "line", "fault"]
    assert "operator" not in got.column_names  # a pii column never reaches the output
    plan = FeaturePlan.of(mlp.package.features)
    x, y, _ = encode_series(table, plan, mlp.package.features.normalization)
    expected = forward(load_network(mlp), x, True)
    probability = np.stack([got[f"probability_{c}"].to_numpy() for c in range(4)], axis=1)
    assert np.allclose(probability, expected, atol=1e-6)
    metrics = summary.metrics()
    assert metrics is not None and metrics["rows"] == 1000
    assert metrics["accuracy"] == pytest.approx(float(np.mean(expected.argmax(1) == y)))
    assert summary.predicted == 1000 and sum(c.sum() for c in summary.counts.values()) == 1000


def test_tcnn_windows_match_training_across_batches_and_interleaved_series(
    tcnn: ModelFolder, tmp_path: Path
) -> None:
    table = line_table(900, seed=4, lines=3)  # three lines interleaved row by row
    out = tmp_path / "p.parquet"
    data = _write(table, tmp_path / "d.parquet")
    summary = predict_file(tcnn, data, out, PredictOptions(batch_rows=100))
    window = tcnn.package.window
    assert window and summary.no_window == 3 * (window - 1)
    plan = FeaturePlan.of(tcnn.package.features)
    x, _, _ = model_arrays(table, plan, tcnn.package.features.normalization, window)
    expected = forward(load_network(tcnn), x, True)
    got = pq.read_table(out).sort_by([("line", "ascending"), ("ts", "ascending")])
    predicted = got.filter(got["probability_0"].is_valid())
    probability = np.stack([predicted[f"probability_{c}"].to_numpy() for c in range(4)], axis=1)
    assert np.allclose(probability, expected, atol=1e-5)


def test_rows_that_break_the_contract_are_refused_and_nothing_is_written(
    mlp: ModelFolder, tmp_path: Path
) -> None:
    table = line_table(500, seed=5)
    temp = table["temp"].to_numpy().copy()
    temp[[7, 300]] = 900.0  # above the contract's max
    table = table.set_column(table.column_names.index("temp"), "temp", pa.array(temp))
    data = _write(table, tmp_path / "d.csv")
    out = tmp_path / "p.parquet"
    with pytest.raises(PredictionError, match="max=2") as refused:
        predict_file(mlp, data, out)
    assert refused.value.report is not None
    assert refused.value.report.violations[0].first_rows == [7, 300]
    assert list(tmp_path.iterdir()) == [data]  # no output, no temporary file
    summary = predict_file(mlp, data, out, PredictOptions(skip_invalid=True))
    got = pq.read_table(out)
    assert summary.skipped == 2 and summary.predicted == 498
    assert got["predicted_fault"].null_count == 2
    assert got.filter(got["predicted_fault"].is_null())["row"].to_pylist() == [7, 300]


def test_a_missing_feature_column_is_refused_even_when_skipping(
    mlp: ModelFolder, tmp_path: Path
) -> None:
    data = _write(line_table(200).drop_columns(["pressure"]), tmp_path / "d.parquet")
    with pytest.raises(PredictionError, match=r"schema\.missing=1"):
        predict_file(mlp, data, tmp_path / "p.csv", PredictOptions(skip_invalid=True))
    assert not (tmp_path / "p.csv").exists()


def test_a_csv_with_a_wrong_type_an_empty_file_and_a_truncated_parquet(
    mlp: ModelFolder, tmp_path: Path
) -> None:
    csv = tmp_path / "d.csv"
    _write(line_table(50), csv)
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[9].split(",")
    cells[header.index('"temp"')] = "warm"
    lines[9] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(PredictionError) as wrong:
        predict_file(mlp, csv, tmp_path / "p.parquet")
    assert wrong.value.report is not None and "warm" not in str(wrong.value)
    assert wrong.value.report.violations[0].first_rows == [8]  # the 9th data row
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    with pytest.raises(PredictionError) as nothing:
        predict_file(mlp, empty, tmp_path / "p.parquet")
    assert nothing.value.report is None
    whole = _write(line_table(500), tmp_path / "whole.parquet").read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(PredictionError, match=r"cut\.parquet"):
        predict_file(mlp, cut, tmp_path / "p.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.parquet", "d.csv", "empty.parquet",
                                                          "whole.parquet"]  # fmt: skip


def test_a_file_without_the_label_is_predicted(mlp: ModelFolder, tmp_path: Path) -> None:
    data = _write(line_table(300).drop_columns(["fault", "wear"]), tmp_path / "d.parquet")
    summary = predict_file(mlp, data, tmp_path / "p.csv")
    assert summary.predicted == 300 and summary.metrics() is None
    assert summary.alarm_count > 0 and summary.alarms[0].predicted != "0"
    assert "fault" not in pacsv.read_csv(tmp_path / "p.csv").column_names[:3]


def test_a_series_going_back_in_time_is_refused(tcnn: ModelFolder, tmp_path: Path) -> None:
    table = line_table(300, seed=6)
    reordered = pa.concat_tables([table.slice(150), table.slice(0, 150)])
    with pytest.raises(PredictionError, match="row 150 is earlier"):
        predict_file(tcnn, _write(reordered, tmp_path / "d.parquet"), tmp_path / "p.parquet")


def test_an_unknown_output_format_or_normal_class(mlp: ModelFolder, tmp_path: Path) -> None:
    data = _write(line_table(100), tmp_path / "d.parquet")
    with pytest.raises(ValueError, match=r"\.parquet or \.csv"):
        predict_file(mlp, data, tmp_path / "p.xlsx")
    with pytest.raises(ValueError, match="not one of the classes"):
        predict_file(mlp, data, tmp_path / "p.csv", PredictOptions(normal="ok"))


def test_arrow_ipc_in_and_a_file_of_another_contract(mlp: ModelFolder, tmp_path: Path) -> None:
    import pyarrow.feather as feather
    from samples import sensor_table

    feather.write_feather(line_table(200), tmp_path / "d.arrow")
    summary = predict_file(mlp, tmp_path / "d.arrow", tmp_path / "p.parquet")
    assert summary.predicted == 200
    pq.write_table(sensor_table(300), tmp_path / "press.parquet")  # the press-sensors contract
    with pytest.raises(PredictionError, match=r"schema\.missing") as refused:
        predict_file(mlp, tmp_path / "press.parquet", tmp_path / "q.parquet")
    assert refused.value.report is not None
    assert {d.column for d in refused.value.report.schema_differences if d.is_error} >= {"line"}
    assert not (tmp_path / "q.parquet").exists()


def test_a_csv_read_with_the_wrong_delimiter_is_a_report_not_a_crash(
    mlp: ModelFolder, tmp_path: Path
) -> None:
    """A semicolon-separated export read as CSV has its whole header as one column name."""
    header = ";".join(["ts", "line", "machine", "temp", "pressure", "operator", "fault"] * 20)
    (tmp_path / "semi.csv").write_text(header + "\n" + ";".join(["1"] * 140) + "\n")
    with pytest.raises(PredictionError) as refused:
        predict_file(mlp, tmp_path / "semi.csv", tmp_path / "p.parquet")
    assert refused.value.report is not None
    assert all(len(d.column) <= 200 for d in refused.value.report.schema_differences)
