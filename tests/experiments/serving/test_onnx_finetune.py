"""ONNX export runs without FedPark and agrees with torch; fine-tuning at the factory makes a
folder of its own that improves where the federated model is off, and that predict accepts."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pyarrow.parquet as pq
import pytest
from clirunner import CliRunner
from modelfolders import line_table, model_folder

from fedpark.clients.cli.main import app
from fedpark.experiments.features import FeaturePlan, model_arrays
from fedpark.experiments.serving.finetune import finetune
from fedpark.experiments.serving.folder import ModelFolderError, open_model
from fedpark.experiments.serving.network import forward, load_network
from fedpark.experiments.serving.onnx_export import export_onnx
from fedpark.experiments.serving.predict import PredictionError, predict_file


@pytest.mark.integration  # torch.export traces the model: seconds per export
@pytest.mark.parametrize("kind", ["mlp", "tcnn"])
def test_onnx_gives_torchs_outputs_from_raw_columns(kind: str, tmp_path: Path) -> None:
    model = open_model(model_folder(tmp_path / kind, kind=kind, epochs=3))
    export_onnx(model, tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["fedpark.labels"]) == [0, 1, 2, 3]
    assert meta["fedpark.contract"] == "line-sensors@1.0.0"
    signed = hashlib.sha256((tmp_path / kind / "manifest.json").read_bytes()).hexdigest()
    assert meta["fedpark.manifest_sha256"] == signed  # `sha256sum manifest.json` matches
    assert meta["fedpark.normalization"] == "pooled" and meta["fedpark.reference"] == ""
    window = model.package.window
    order = [("line", "ascending")] if window else []  # the rows in the order model_arrays takes
    table = line_table(400, seed=9).sort_by([*order, ("ts", "ascending")])
    plan = FeaturePlan.of(model.package.features)
    x, _, _ = model_arrays(table, plan, model.package.features.normalization, window)
    expected = forward(load_network(model), x, True)

    def raw(name: str) -> np.ndarray:
        column = table[name]
        values = (
            np.array(column.to_pylist(), dtype=object)
            if name == "machine"
            else column.to_numpy().astype(np.float32)
        )
        if window is None:
            return values
        keys = np.array(table["line"].to_pylist())
        starts = [i for i in range(len(keys) - window + 1) if keys[i] == keys[i + window - 1]]
        return np.stack([values[i : i + window] for i in starts])

    feeds = {name: raw(name) for name in ("temp", "pressure", "machine")}
    probabilities, index, label = session.run(["probabilities", "class_index", "label"], feeds)
    assert np.abs(probabilities - expected).max() < 1e-5
    assert (index == expected.argmax(1)).all() and (label == index).all()


def test_finetuning_corrects_a_factory_whose_sensors_read_differently(tmp_path: Path) -> None:
    federated = open_model(model_folder(tmp_path / "fed", epochs=10))
    shifted = line_table(3000, seed=5, shift=8.0)  # this factory's thermometers read 8 K high
    pq.write_table(shifted, tmp_path / "mine.parquet")
    local = finetune(federated, tmp_path / "mine.parquet", tmp_path / "local", epochs=5)
    assert local.after["macro_f1"] > local.before["macro_f1"] + 0.1, (local.before, local.after)
    assert local.parent.weights_sha256 == federated.weights_sha256
    tuned = open_model(tmp_path / "local")
    assert tuned.local == local and tuned.package == federated.package
    summary = predict_file(tuned, tmp_path / "mine.parquet", tmp_path / "p.parquet")
    assert summary.predicted == 3000
    with pytest.raises(PredictionError, match="already holds files"):
        finetune(federated, tmp_path / "mine.parquet", tmp_path / "local")
    weights = bytearray((tmp_path / "local" / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (tmp_path / "local" / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(ModelFolderError, match="differs from the one its manifest names"):
        open_model(tmp_path / "local")


def test_the_cli_exits_1_on_refusal_and_2_on_unusable_input(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "model", epochs=1)
    good = tmp_path / "d.parquet"
    pq.write_table(line_table(200), good)
    runner = CliRunner()
    ok = runner.invoke(
        app, ["model", "predict", str(folder), str(good), "-o", str(tmp_path / "p.csv")]
    )
    assert ok.exit_code == 0 and "predicted 200 of 200 rows" in ok.output, ok.output
    missing = runner.invoke(app, ["model", "predict", str(folder), str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    broken = line_table(200).drop_columns(["temp"])
    pq.write_table(broken, tmp_path / "broken.parquet")
    refused = runner.invoke(
        app,
        [
            "model",
            "predict",
            str(folder),
            str(tmp_path / "broken.parquet"),
            "-o",
            str(tmp_path / "q.csv"),
        ],
    )
    assert refused.exit_code == 1 and "column temp: missing" in refused.output, refused.output
    tampered = Path(shutil.copytree(folder, tmp_path / "tampered"))
    (tampered / "manifest.json").write_text((tampered / "manifest.json").read_text() + " ")
    bad = runner.invoke(app, ["model", "show", str(tampered)])
    assert bad.exit_code == 1 and "not verified" in bad.output and "Traceback" not in bad.output
    card = runner.invoke(app, ["model", "show", str(folder)])
    assert card.exit_code == 0 and "fedpark model predict" in card.output
    assert "signed by hub key" in card.output
    before = good.read_bytes()
    itself = runner.invoke(app, ["model", "predict", str(folder), str(good), "-o", str(good)])
    assert itself.exit_code == 2 and "the data file itself" in itself.output
    assert good.read_bytes() == before  # the factory's data is never overwritten
    nowhere = tmp_path / "no-such-folder" / "p.parquet"
    lost = runner.invoke(app, ["model", "predict", str(folder), str(good), "-o", str(nowhere)])
    assert lost.exit_code == 2 and "cannot write" in lost.output and "Traceback" not in lost.output
    gone = runner.invoke(app, ["model", "show", str(tmp_path / "nothing")])
    assert gone.exit_code == 2 and "does not exist" in gone.output


def test_finetune_that_cannot_write_its_folder_says_so(tmp_path: Path) -> None:
    """An output under a file (or a full disk, a read-only mount): exit 2 in one line, no
    traceback, nothing half-written beside it."""
    folder = model_folder(tmp_path / "model", epochs=1)
    data = tmp_path / "d.parquet"
    pq.write_table(line_table(300), data)
    (tmp_path / "a-file").write_text("not a folder")
    output = tmp_path / "a-file" / "local"
    shown = CliRunner().invoke(
        app, ["model", "finetune", str(folder), str(data), "-o", str(output), "--epochs", "1"]
    )
    assert shown.exit_code == 2, shown.output
    assert shown.output.strip().splitlines()[-1] == f"error: cannot write {output}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "d.parquet", "model"]
