"""Fashion-MNIST: IDX parsing on small files written here, the real files where installed."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from fedpark.contracts import Contract, validate_file, validate_table
from fedpark.datasets import fashion_mnist as fm

INSTALLED = fm.files("train", fm.DEFAULT_FOLDER)[0].is_file()
needs_debian_files = pytest.mark.skipif(
    not INSTALLED, reason=f"dataset-fashion-mnist is not installed ({fm.DEFAULT_FOLDER})"
)


def small_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    return images, rng.integers(0, 10, size=n, dtype=np.uint8)


def write_split(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fm.write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
    fm.write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)


def test_reads_the_idx_files_it_finds(tmp_path: Path) -> None:
    images, labels = small_images(37)
    write_split(tmp_path, "t10k", images, labels)
    got_images, got_labels = fm.load("test", tmp_path)
    assert got_images.dtype == np.uint8 and got_images.shape == (37, 28, 28)
    assert np.array_equal(got_images, images) and np.array_equal(got_labels, labels)
    assert got_images.flags.writeable  # a copy, not a view of the decompressed bytes


def test_the_env_variable_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = small_images(5, seed=2)
    write_split(tmp_path / "fm", "train", images, labels)
    monkeypatch.setenv(fm.ENV_VAR, str(tmp_path / "fm"))
    assert np.array_equal(fm.load("train")[1], labels)
    assert fm.folder(tmp_path / "elsewhere") == tmp_path / "elsewhere"  # an argument wins


def test_idx_header_is_checked_byte_by_byte() -> None:
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = bytes([0, 0, 8, 3]) + np.array([2, 3, 4], dtype=">u4").tobytes() + data.tobytes()
    assert np.array_equal(fm.parse_idx(raw, dims=3), data)
    with pytest.raises(fm.FashionMnistError, match="too short"):
        fm.parse_idx(raw[:3], dims=3)
    with pytest.raises(fm.FashionMnistError, match=r"magic number 0x00000d03.*0x00000803"):
        fm.parse_idx(bytes([0, 0, 0x0D, 3]) + raw[4:], dims=3)  # float IDX, not bytes
    with pytest.raises(fm.FashionMnistError, match="magic number"):
        fm.parse_idx(b"\x1f\x8b" + raw[2:], dims=3)  # still gzip-compressed
    with pytest.raises(fm.FashionMnistError, match="3 dimensions, expected 1"):
        fm.parse_idx(raw, dims=1)
    with pytest.raises(fm.FashionMnistError, match="inside the header"):
        fm.parse_idx(raw[:10], dims=3)
    with pytest.raises(fm.FashionMnistError, match=r"23 data bytes.*2x3x4 = 24"):
        fm.parse_idx(raw[:-1], dims=3)
    with pytest.raises(fm.FashionMnistError, match="25 data bytes"):
        fm.parse_idx(raw + b"\0", dims=3)


def test_truncated_or_wrong_files_fail_clearly(tmp_path: Path) -> None:
    images, labels = small_images(20)
    write_split(tmp_path, "train", images, labels)
    image_file, label_file = fm.files("train", tmp_path)
    whole = image_file.read_bytes()
    image_file.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(fm.FashionMnistError, match="cannot decompress"):
        fm.load("train", tmp_path)
    # A gzip that is whole but holds too few bytes: truncated before it was compressed.
    raw = gzip.decompress(whole)
    image_file.write_bytes(gzip.compress(raw[:-28]))
    with pytest.raises(fm.FashionMnistError, match="truncated or corrupted"):
        fm.load("train", tmp_path)
    # Images of another size, and more labels than images.
    fm.write_idx(image_file, np.zeros((20, 32, 32), np.uint8))
    with pytest.raises(fm.FashionMnistError, match="32x32, not 28x28"):
        fm.load("train", tmp_path)
    fm.write_idx(image_file, images)
    fm.write_idx(label_file, np.zeros(21, np.uint8))
    with pytest.raises(fm.FashionMnistError, match=r"20 images but .* 21 labels"):
        fm.load("train", tmp_path)
    fm.write_idx(label_file, np.full(20, 10, np.uint8))
    with pytest.raises(fm.FashionMnistError, match=r"label 10 is not 0\.\.9"):
        fm.load("train", tmp_path)
    # Swapped files: the labels file where the images should be.
    fm.write_idx(image_file, labels)
    with pytest.raises(fm.FashionMnistError, match="1 dimensions, expected 3"):
        fm.load("train", tmp_path)


def test_missing_files_say_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(fm.FashionMnistMissingError) as caught:
        fm.load("train", tmp_path / "nowhere")
    message = str(caught.value)
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert fm.ENV_VAR in message and "train-images-idx3-ubyte.gz" in message
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        fm.load("validation", tmp_path)  # type: ignore[arg-type]


def test_table_round_trips_and_meets_its_contract(tmp_path: Path) -> None:
    images, labels = small_images(50)
    table = fm.to_table(images, labels)
    assert str(table.schema.field("image").type) == "fixed_size_list<item: uint8>[784]"
    assert str(table.schema.field("label").type) == "int8"
    assert table["image"][3].as_py() == images[3].reshape(-1).tolist()  # row-major pixels

    contract = Contract.model_validate(fm.contract_document("acme"))
    assert contract.column("image").type == "fixed_size_list<uint8>[784]"
    assert contract.column("label").role.value == "label"
    path = tmp_path / "fm.parquet"
    pq.write_table(table, path)
    result = validate_file(contract, path)
    assert result.report.passed, result.report
    assert result.report.schema_differences == []
    assert np.array_equal(fm.from_table(pq.read_table(path))[0], images)

    # The contract bites: a label outside 0..9 is reported.
    wrong = fm.to_table(images, np.where(np.arange(50) == 7, 12, labels))
    failed = validate_table(contract, wrong)
    assert not failed.report.passed
    assert [(v.column, v.rule, v.first_rows) for v in failed.report.violations] == [
        ("label", "allowed_values", [7])
    ]
    with pytest.raises(ValueError, match=r"\[50, 784\]"):
        fm.to_table(images.reshape(50, 784), labels)


@needs_debian_files
def test_debian_package_files_load() -> None:
    images, labels = fm.load("train", fm.DEFAULT_FOLDER)
    assert images.shape == (60_000, 28, 28) and labels.shape == (60_000,)
    assert np.bincount(labels).tolist() == [6000] * 10  # Fashion-MNIST is balanced
    test_images, test_labels = fm.load("test", fm.DEFAULT_FOLDER)
    assert test_images.shape == (10_000, 28, 28)
    assert np.bincount(test_labels).tolist() == [1000] * 10
    assert 60 < images.mean() < 90 and images.max() == 255


@needs_debian_files
def test_debian_test_split_meets_the_contract(tmp_path: Path) -> None:
    path = tmp_path / "test.parquet"
    pq.write_table(fm.to_table(*fm.load("test", fm.DEFAULT_FOLDER)), path)
    result = validate_file(Contract.model_validate(fm.contract_document()), path)
    assert result.report.passed and result.report.rows == 10_000
