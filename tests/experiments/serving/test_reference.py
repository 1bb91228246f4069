"""A model trained with each factory's own statistics (``normalization: factory``) runs with
the running plant's: computed from a reference file of its history, refused without one, and
carried by a fine-tuned folder so that it runs on its own."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from clirunner import CliRunner
from modelfolders import line_table, model_folder, with_flag

from fedpark.clients.cli.main import app
from fedpark.experiments.serving.finetune import finetune
from fedpark.experiments.serving.folder import ModelFolder, ModelFolderError, open_model
from fedpark.experiments.serving.onnx_export import build_onnx
from fedpark.experiments.serving.predict import PredictionError, predict_file
from fedpark.experiments.serving.reference import with_reference

# Two plants at operating points 30 K apart; a fault is a deviation from a plant's own level.
LEVELS = (0.0, 30.0)


@pytest.fixture(scope="module")
def factory_model(tmp_path_factory: pytest.TempPathFactory) -> ModelFolder:
    plants = [line_table(3000, seed=i, shift=level) for i, level in enumerate(LEVELS)]
    folder = tmp_path_factory.mktemp("f") / "model"
    return open_model(model_folder(folder, epochs=10, plants=plants))


def _plant(tmp_path: Path, name: str, seed: int) -> Path:
    """A file of the plant running 30 K above the other one."""
    path = tmp_path / f"{name}.parquet"
    pq.write_table(line_table(2000, seed=seed, shift=LEVELS[1]), path)
    return path


def _accuracy(model: ModelFolder, data: Path, out: Path) -> float:
    summary = predict_file(model, data, out)
    metrics = summary.metrics()
    assert metrics is not None
    return float(metrics["accuracy"])


def test_the_plants_own_statistics_make_the_model_work_where_pooled_ones_would_not(
    factory_model: ModelFolder, tmp_path: Path
) -> None:
    history, today = _plant(tmp_path, "history", 7), _plant(tmp_path, "today", 8)
    own = with_reference(factory_model, history)
    reference = own.package.features.reference or ""
    assert reference.startswith("history.parquet (2000 rows, sha256 "), reference
    temps = pq.read_table(history)["temp"]
    assert own.package.features.normalization.mean["temp"] == pytest.approx(pc.mean(temps).as_py())
    accuracy = _accuracy(own, today, tmp_path / "own.parquet")
    assert accuracy > 0.9
    # Control: the same network on the pooled statistics the package holds (as if run
    # without the plant's): the 30 K offset reads as faults.
    features = factory_model.package.features.model_copy(update={"reference": "pooled"})
    pooled = dataclasses.replace(
        factory_model, package=factory_model.package.model_copy(update={"features": features})
    )
    assert _accuracy(pooled, today, tmp_path / "pooled.parquet") < accuracy - 0.15


def test_without_a_reference_nothing_runs_and_the_message_says_what_to_give(
    factory_model: ModelFolder, tmp_path: Path
) -> None:
    today = _plant(tmp_path, "today", 8)
    with pytest.raises(PredictionError, match="--reference"):
        predict_file(factory_model, today, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
    with pytest.raises(PredictionError, match="--reference"):
        build_onnx(factory_model)
    cli = CliRunner().invoke(
        app,
        [
            "model",
            "predict",
            str(factory_model.path),
            str(today),
            "-o",
            str(tmp_path / "c.parquet"),
        ],
    )
    assert cli.exit_code == 2 and "--reference" in cli.output, cli.output
    onnx = CliRunner().invoke(app, ["model", "export-onnx", str(factory_model.path)])
    assert onnx.exit_code == 2 and "--reference" in onnx.output, onnx.output


def test_a_reference_that_breaks_the_contract_or_has_no_readings_is_refused(
    factory_model: ModelFolder, tmp_path: Path
) -> None:
    table = line_table(500, seed=3, shift=LEVELS[1])
    temps = table["temp"].to_numpy().copy()
    temps[10] = -5.0  # below the contract's minimum of 0 degC
    bad = tmp_path / "bad.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("temp"), "temp", [temps]), bad)
    with pytest.raises(PredictionError, match="breaks the model's contract: min=1") as caught:
        with_reference(factory_model, bad)
    assert caught.value.report is not None
    empty = tmp_path / "empty.parquet"
    nulls = pa.nulls(len(table), pa.float64())
    pq.write_table(table.set_column(table.schema.get_field_index("temp"), "temp", nulls), empty)
    with pytest.raises(PredictionError, match="no readings of temp"):
        with_reference(factory_model, empty)
    few = tmp_path / "few.parquet"
    pq.write_table(line_table(99, seed=4, shift=LEVELS[1]), few)
    with pytest.raises(PredictionError, match="has 99 rows: a plant's statistics need at least"):
        with_reference(factory_model, few)
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(PredictionError, match=r"^reference truncated\.parquet"):
        with_reference(factory_model, truncated)
    cli = CliRunner().invoke(
        app,
        ["model", "predict", str(factory_model.path), str(bad), "--reference", str(bad)],
    )
    assert cli.exit_code == 1 and "min" in cli.output, cli.output


def test_the_commands_say_which_statistics_they_standardized_with(
    factory_model: ModelFolder, tmp_path: Path
) -> None:
    history, today = _plant(tmp_path, "history", 7), _plant(tmp_path, "today", 8)
    out = tmp_path / "p.parquet"
    argv = ["model", "predict", str(factory_model.path), str(today), "-o", str(out)]
    cli = CliRunner().invoke(app, [*argv, "--reference", str(history)])
    said = " ".join(cli.output.split())
    assert cli.exit_code == 0 and "statistics from history.parquet (2000 rows" in said, said


def test_a_reference_for_a_pooled_model_is_refused(tmp_path: Path) -> None:
    pooled = open_model(model_folder(tmp_path / "pooled", epochs=1))
    history = _plant(tmp_path, "history", 7)
    with pytest.raises(PredictionError, match="only for models trained with normalization"):
        with_reference(pooled, history)


def test_a_fine_tuned_folder_keeps_the_plants_statistics_and_runs_without_a_reference(
    factory_model: ModelFolder, tmp_path: Path
) -> None:
    history, today = _plant(tmp_path, "history", 7), _plant(tmp_path, "today", 8)
    local = finetune(factory_model, history, tmp_path / "local", epochs=1)
    assert (local.package.features.reference or "").startswith("history.parquet (2000 rows")
    tuned = open_model(tmp_path / "local")
    assert not tuned.package.needs_reference
    assert _accuracy(tuned, today, tmp_path / "tuned.parquet") > 0.9
    folder = str(tmp_path / "local")
    cli = CliRunner().invoke(
        app, ["model", "predict", folder, str(today), "-o", str(tmp_path / "c.csv")]
    )
    assert cli.exit_code == 0, cli.output
    # Its card says how it runs now: no --reference, and that it is this plant's model.
    card = CliRunner().invoke(app, ["model", "show", folder])
    assert card.exit_code == 0 and "--reference" not in card.output, card.output
    assert "one plant's statistics (from history.parquet" in " ".join(card.output.split())
    # Another plant's statistics would replace this plant's silently: refused.
    other = CliRunner().invoke(
        app,
        ["model", "predict", folder, str(today), "--reference", str(history), "-o", "x.csv"],
    )
    assert other.exit_code == 2 and "run it without --reference" in other.output, other.output
    # Only the plant's statistics may differ from the signed package: anything else is refused.
    manifest = tmp_path / "local" / "manifest.json"
    text = manifest.read_text()
    assert '"dropout": 0.0' in text
    manifest.write_text(text.replace('"dropout": 0.0', '"dropout": 0.5'))
    with pytest.raises(ModelFolderError, match="differs from its parent's signed one"):
        open_model(tmp_path / "local")


@pytest.mark.integration  # torch.export traces the model: seconds
def test_onnx_standardizes_with_the_reference_and_says_whose_statistics(
    factory_model: ModelFolder, tmp_path: Path
) -> None:
    import numpy as np
    import onnxruntime

    from fedpark.experiments.serving.onnx_export import export_onnx

    history, today = _plant(tmp_path, "history", 7), _plant(tmp_path, "today", 8)
    own = with_reference(factory_model, history)
    export_onnx(own, tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["fedpark.normalization"] == "factory"
    assert meta["fedpark.reference"].startswith("history.parquet (2000 rows")
    rows = pq.read_table(today)
    feeds = {
        "temp": rows["temp"].to_numpy().astype(np.float32),
        "pressure": rows["pressure"].to_numpy().astype(np.float32),
        "machine": np.array(rows["machine"].to_pylist(), dtype=object),
    }
    (labels,) = session.run(["label"], feeds)
    summary = predict_file(own, today, tmp_path / "p.parquet")
    assert summary.predicted == len(labels)
    torch_labels = pq.read_table(tmp_path / "p.parquet")["predicted_fault"].to_numpy()
    assert (labels == torch_labels).mean() > 0.999


def test_a_flag_among_the_inputs_is_no_missing_reading(tmp_path: Path) -> None:
    """Booleans have no moments in a profile: they stay 0/1 as in training."""
    plants = [line_table(300, seed=i, shift=level) for i, level in enumerate(LEVELS)]
    model = open_model(model_folder(tmp_path / "m", epochs=1, plants=plants, flag=True))
    assert "running" in model.package.features.numeric
    history = tmp_path / "history.parquet"
    pq.write_table(with_flag(line_table(300, seed=7, shift=LEVELS[1])), history)
    own = with_reference(model, history)
    assert own.package.features.normalization.mean["running"] == 0.0
    assert own.package.features.normalization.std["running"] == 1.0
    assert predict_file(own, history, tmp_path / "p.parquet").predicted == 300


def test_fine_tuning_again_takes_the_new_datas_statistics(
    factory_model: ModelFolder, tmp_path: Path
) -> None:
    history, later = _plant(tmp_path, "history", 7), _plant(tmp_path, "later", 9)
    finetune(factory_model, history, tmp_path / "first", epochs=1)
    again = finetune(open_model(tmp_path / "first"), later, tmp_path / "second", epochs=1)
    assert (again.package.features.reference or "").startswith("later.parquet (2000 rows")
    short = tmp_path / "short.parquet"
    pq.write_table(line_table(50, seed=3, shift=LEVELS[1]), short)
    with pytest.raises(PredictionError, match=r"^the data breaks the model's contract: min_rows"):
        finetune(factory_model, short, tmp_path / "third", epochs=1)  # 50 rows: too short
    blind = tmp_path / "blind.parquet"
    table = line_table(500, seed=3, shift=LEVELS[1])
    nulls = pa.nulls(len(table), pa.float64())
    pq.write_table(table.set_column(table.schema.get_field_index("temp"), "temp", nulls), blind)
    with pytest.raises(PredictionError, match=r"^the data blind\.parquet has no readings of temp"):
        finetune(factory_model, blind, tmp_path / "fourth", epochs=1)


def test_a_local_folder_with_statistics_no_plant_has_is_refused(
    factory_model: ModelFolder, tmp_path: Path
) -> None:
    history = _plant(tmp_path, "history", 7)
    finetune(factory_model, history, tmp_path / "local", epochs=1)
    manifest = tmp_path / "local" / "manifest.json"
    document = json.loads(manifest.read_text())
    document["package"]["features"]["normalization"]["std"]["temp"] = 0.0
    manifest.write_text(json.dumps(document))
    with pytest.raises(ModelFolderError, match="differs from its parent's signed one"):
        open_model(tmp_path / "local")
