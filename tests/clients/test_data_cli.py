"""``fedpark data``: Fashion-MNIST and any Parquet file split into factory folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clirunner import CliRunner

from fedpark.clients.cli.main import app
from fedpark.contracts import Contract, validate_file
from fedpark.datasets import fashion_mnist as fm

runner = CliRunner()


@pytest.fixture
def small_fashion_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 300-image training set (30 per class) and a 40-image test set, named by the env var."""
    folder = tmp_path / "idx"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 40)):
        labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        fm.write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        fm.write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    monkeypatch.setenv(fm.ENV_VAR, str(folder))
    return folder


def client_labels(out: Path) -> list[set[int]]:
    files = sorted(out.glob("client-*/train.parquet"))
    return [set(pq.read_table(f)["label"].to_pylist()) for f in files]


def test_fashion_mnist_classes_split(small_fashion_mnist: Path, tmp_path: Path) -> None:
    out = tmp_path / "fm"
    args = ["data", "fashion-mnist", "--clients", "5", "--scheme", "classes", "--classes", "2"]
    result = runner.invoke(app, [*args, "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        *(f"client-0{i}" for i in range(1, 6)),
        "contract.json",
        "partition.json",
        "test.parquet",
    ]
    held = client_labels(out)
    assert len(held) == 5 and all(len(h) == 2 for h in held)
    tables = [pq.read_table(f) for f in sorted(out.glob("client-*/train.parquet"))]
    # Five clients with two classes each cover ten class slots; class i % 10 is always first.
    assert all(i in h for i, h in enumerate(held))
    assert sum(t.num_rows for t in tables) == sum(
        30 for k in range(10) if any(k in h for h in held)
    )

    contract = Contract.model_validate(json.loads((out / "contract.json").read_text()))
    for path in [*out.glob("client-*/train.parquet"), out / "test.parquet"]:
        assert validate_file(contract, path).report.passed, path
    assert pq.read_table(out / "test.parquet").num_rows == 40
    manifest = json.loads((out / "partition.json").read_text())
    assert manifest["scheme"] == "classes" and manifest["classes_per_client"] == 2
    assert [p["rows"] for p in manifest["parts"]] == [t.num_rows for t in tables]


def test_fashion_mnist_iid_and_dirichlet(small_fashion_mnist: Path, tmp_path: Path) -> None:
    iid = runner.invoke(
        app, ["data", "fashion-mnist", "--clients", "3", "--out", str(tmp_path / "a")]
    )
    assert iid.exit_code == 0, iid.output
    sizes = [pq.read_metadata(f).num_rows for f in sorted((tmp_path / "a").glob("*/train.parquet"))]
    assert sizes == [100, 100, 100]

    args = ["data", "fashion-mnist", "--clients", "4", "--scheme", "dirichlet", "--alpha", "0.3"]
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    again = runner.invoke(app, [*args, "--out", str(tmp_path / "c")])
    assert first.exit_code == again.exit_code == 0, first.output
    assert client_labels(tmp_path / "b") == client_labels(tmp_path / "c")  # same seed
    rows = [pq.read_table(f) for f in sorted((tmp_path / "b").glob("*/train.parquet"))]
    assert sum(t.num_rows for t in rows) == 300 and min(t.num_rows for t in rows) >= 10


def test_fashion_mnist_errors_are_clear(
    small_fashion_mnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "old.txt").write_text("x")
    result = runner.invoke(app, ["data", "fashion-mnist", "--out", str(busy)])
    assert result.exit_code == 2 and "not an empty folder" in result.output

    result = runner.invoke(
        app,
        [
            "data",
            "fashion-mnist",
            "--scheme",
            "classes",
            "--classes",
            "11",
            "-o",
            str(tmp_path / "x"),
        ],
    )
    assert result.exit_code == 2 and "between 1 and 10" in result.output
    assert not (tmp_path / "x").exists()  # nothing written when the split is impossible

    monkeypatch.setenv(fm.ENV_VAR, str(tmp_path / "nowhere"))
    result = runner.invoke(app, ["data", "fashion-mnist", "--out", str(tmp_path / "new")])
    assert result.exit_code == 2
    assert "apt-get install dataset-fashion-mnist" in " ".join(result.output.split())


def plants_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    n = 240
    table = pa.table(
        {
            "plant": pa.array(rng.choice(["Plant A", "plant-b", "plant-c"], size=n)),
            "engine": pa.array(rng.integers(1, 4, size=n)),
            "temp": pa.array(rng.normal(180, 3, size=n)),
            "fault": pa.array((np.arange(n) % 4).astype(np.int8)),
        }
    )
    path = tmp_path / "line.parquet"
    pq.write_table(table, path)
    return path


def test_partition_by_key_column(tmp_path: Path) -> None:
    data = plants_file(tmp_path)
    source = pq.read_table(data)
    out = tmp_path / "plants"
    args = ["data", "partition", str(data), "--scheme", "natural", "--key", "plant"]
    result = runner.invoke(app, [*args, "--label", "fault", "--out", str(out)])
    assert result.exit_code == 0, result.output
    parts = {p.parent.name: pq.read_table(p) for p in out.glob("*/line.parquet")}
    assert sorted(parts) == ["plant-a", "plant-b", "plant-c"]
    assert set(parts["plant-a"]["plant"].to_pylist()) == {"Plant A"}
    assert sum(t.num_rows for t in parts.values()) == source.num_rows
    manifest = json.loads((out / "partition.json").read_text())
    assert manifest["key"] == "plant"
    assert sum(sum(p["labels"].values()) for p in manifest["parts"]) == source.num_rows

    by_engine = runner.invoke(
        app,
        [
            "data",
            "partition",
            str(data),
            "--scheme",
            "natural",
            "--key",
            "engine",
            "-o",
            str(tmp_path / "engines"),
        ],
    )
    assert by_engine.exit_code == 0, by_engine.output
    assert sorted(p.name for p in (tmp_path / "engines").glob("engine-*")) == [
        "engine-1",
        "engine-2",
        "engine-3",
    ]


def test_partition_with_label_skew(tmp_path: Path) -> None:
    data = plants_file(tmp_path)
    out = tmp_path / "skew"
    args = ["data", "partition", str(data), "--scheme", "classes", "--label", "fault"]
    result = runner.invoke(app, [*args, "--clients", "4", "--classes", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    parts = [pq.read_table(p) for p in sorted(out.glob("client-*/line.parquet"))]
    assert [set(t["fault"].to_pylist()) for t in parts] == [{0}, {1}, {2}, {3}]

    missing_label = runner.invoke(
        app, ["data", "partition", str(data), "--scheme", "dirichlet", "-o", str(tmp_path / "d")]
    )
    assert missing_label.exit_code == 2 and "needs a label column" in missing_label.output
    no_key = runner.invoke(
        app, ["data", "partition", str(data), "--scheme", "natural", "-o", str(tmp_path / "e")]
    )
    assert no_key.exit_code == 2 and "needs --key" in no_key.output
    typo = runner.invoke(
        app,
        [
            "data",
            "partition",
            str(data),
            "--scheme",
            "iid",
            "--label",
            "falut",
            "-o",
            str(tmp_path),
        ],
    )
    assert typo.exit_code == 2 and "no column 'falut'" in typo.output
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    unreadable = runner.invoke(
        app, ["data", "partition", str(garbage), "--scheme", "iid", "-o", str(tmp_path / "g")]
    )
    assert unreadable.exit_code == 2 and "cannot read" in unreadable.output
