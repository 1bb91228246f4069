"""Opening a model folder verifies it offline: a missing, altered or swapped file, or a
signature by another key, is refused in FedPark's words."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from modelfolders import model_folder, write_folder

from fedpark.experiments.serving.folder import ModelFolderError, open_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_folder(tmp_path_factory.mktemp("model") / "mlp", epochs=2)


@pytest.fixture
def folder(trained: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "model"))


def test_a_downloaded_folder_opens_with_its_package(folder: Path) -> None:
    model = open_model(folder)
    assert model.package.features.label == "fault"
    assert model.package.features.inputs == ["temp", "pressure", "machine"]
    assert model.contract.id == "line-sensors" and model.local is None


@pytest.mark.parametrize("name", ["model.safetensors", "manifest.json", "manifest.sig.json"])
def test_a_missing_file_is_named(folder: Path, name: str) -> None:
    (folder / name).unlink()
    with pytest.raises(ModelFolderError, match=f"{name} is missing"):
        open_model(folder)


def test_altered_weights_or_manifest_are_refused(folder: Path) -> None:
    weights = bytearray((folder / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (folder / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(ModelFolderError, match="weights differ"):
        open_model(folder)


def test_a_manifest_swapped_in_from_another_model_is_refused(folder: Path, tmp_path: Path) -> None:
    other = model_folder(tmp_path / "other", epochs=1)
    shutil.copyfile(other / "manifest.json", folder / "manifest.json")
    with pytest.raises(ModelFolderError, match="manifest differs"):
        open_model(folder)


def test_a_signature_by_another_key_is_refused(folder: Path, tmp_path: Path) -> None:
    model = open_model(folder)
    forged = tmp_path / "forged"
    write_folder(forged, model.weights, model.package, Ed25519PrivateKey.generate())
    shutil.copyfile(forged / "manifest.sig.json", folder / "manifest.sig.json")
    with pytest.raises(ModelFolderError, match="not verified"):
        open_model(folder)
    # The pinned key decides: a folder signed and pinned by another key is refused with --key.
    with pytest.raises(ModelFolderError, match="not verified"):
        open_model(forged, key=folder / "hub-key.pem")


def test_garbage_files_are_refused_without_a_traceback(folder: Path) -> None:
    (folder / "manifest.sig.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match="not JSON"):
        open_model(folder)
    (folder / "hub-key.pem").write_text("not a key")
    (folder / "manifest.sig.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(ModelFolderError):
        open_model(folder)
    with pytest.raises(ModelFolderError, match="not a model folder"):
        open_model(folder / "model.safetensors")
