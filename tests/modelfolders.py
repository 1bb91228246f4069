"""Model folders as ``fedpark model download`` writes them, made without a hub: a small model
trained locally on a learnable line-sensor table, its package, and a manifest signed with a
test key (the tests of predict, export-onnx and finetune run on them)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedpark.contracts import Contract
from fedpark.contracts.signing import canonical
from fedpark.experiments.features import model_arrays, plan_from_contract
from fedpark.experiments.models import ModelSpec, build_model
from fedpark.experiments.protocol.manifest import (
    ManifestContract,
    ManifestExperiment,
    ManifestStrategy,
    ManifestWeights,
    ModelManifest,
    sign_manifest,
)
from fedpark.experiments.protocol.package import ModelPackage, Normalization
from fedpark.experiments.protocol.plan import ModelSettings, TrainSettings
from fedpark.experiments.training import TrainConfig, train
from fedpark.experiments.weights import to_safetensors

CLASSES = [0, 1, 2, 3]


def line_contract(task: str = "classification") -> dict[str, Any]:
    """Sensor rows of production lines: a fault code (or a wear value) to predict."""
    label: dict[str, Any] = (
        {"name": "fault", "type": "int32", "role": "label", "rules": {"allowed_values": CLASSES}}
        if task == "classification"
        else {"name": "wear", "type": "float64", "role": "label", "unit": "um"}
    )
    return {
        "id": "line-sensors",
        "version": "1.0.0",
        "title": "Line sensors",
        "owner": "acme",
        "columns": [
            {"name": "ts", "type": "timestamp[ms, tz=UTC]", "nullable": False, "role": "time"},
            {"name": "line", "type": "string", "nullable": False, "role": "id"},
            {
                "name": "machine",
                "type": "string",
                "nullable": False,
                "rules": {"allowed_values": ["press-1", "press-2"]},
            },
            {"name": "temp", "type": "float64", "unit": "degC", "rules": {"min": 0, "max": 150}},
            {"name": "pressure", "type": "float64", "unit": "bar", "rules": {"min": 0}},
            {"name": "operator", "type": "string", "role": "pii"},
            label,
        ],
        "rows": {"min_rows": 100},
        "policy": {"purposes": ["equipment-diagnostics"], "min_factories": 1},
    }


def line_table(rows: int = 4000, seed: int = 0, lines: int = 2, shift: float = 0.0) -> pa.Table:
    """Rows of ``lines`` lines interleaved in time; the fault follows temperature and
    pressure (``shift`` moves one factory's temperatures: a case local data must correct)."""
    rng = np.random.default_rng(seed)
    temp = rng.normal(60, 8, rows)
    pressure = rng.normal(3, 0.5, rows)
    fault = np.where(temp > 68, 1, 0)
    fault = np.where(pressure > 3.5, 2, fault)
    fault = np.where((temp < 52) & (pressure < 2.6), 3, fault)
    wear = 10 + 0.5 * (temp - 60) + 4 * (pressure - 3) + rng.normal(0, 0.2, rows)
    return pa.table(
        {
            "ts": pa.array(np.arange(rows, dtype="int64") * 1000, pa.timestamp("ms", tz="UTC")),
            "line": pa.array([f"L{i % lines}" for i in range(rows)]),
            "machine": pa.array(rng.choice(["press-1", "press-2"], rows)),
            "temp": pa.array(temp + shift),
            "pressure": pa.array(pressure),
            "operator": pa.array([f"op{i % 5}" for i in range(rows)]),
            "fault": pa.array(fault.astype("int32")),
            "wear": pa.array(wear),
        }
    )


def model_folder(
    folder: Path,
    *,
    kind: str = "mlp",
    task: str = "classification",
    table: pa.Table | None = None,
    epochs: int = 20,
    key: Ed25519PrivateKey | None = None,
    plants: list[pa.Table] | None = None,
    flag: bool = False,
) -> Path:
    """A signed model folder trained on ``table`` (default: ``line_table()``).

    With ``plants``, a model trained with ``normalization: factory``: on every plant's table
    standardized with that plant's own statistics; its package holds the pooled ones.
    ``flag``: the tables carry a boolean feature, ``running`` (see :func:`with_flag`).
    """
    document = line_contract(task)
    if flag:
        document["columns"].insert(5, {"name": "running", "type": "bool", "nullable": False})
        table = with_flag(table or line_table())
        plants = [with_flag(t) for t in plants] if plants else None
    if task == "classification":
        document["columns"] = [c for c in document["columns"] if c["name"] != "wear"]
    contract = Contract.model_validate(document)
    table = (table or line_table()).select([c.name for c in contract.columns])
    settings = ModelSettings(
        kind=kind,  # type: ignore[arg-type]
        task=task,  # type: ignore[arg-type]
        hidden=(32, 32),
        window=8,
        dropout=0.0,
        series="line" if kind == "tcnn" else None,
        normalization="factory" if plants else "pooled",
    )
    plan = plan_from_contract(contract, task, settings.series)
    stats = [*plan.numeric, *([plan.label] if task == "regression" else [])]
    window = settings.window if kind == "tcnn" else None
    if plants:
        parts = [model_arrays(t, plan, own_normalization(t, stats), window) for t in plants]
        x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        table = pa.concat_tables([t.select(table.column_names) for t in plants])
    norm = own_normalization(table, stats)
    if not plants:
        x, y, _ = model_arrays(table, plan, norm, window)
    target = (norm.mean[plan.label], norm.std[plan.label]) if task == "regression" else None
    classes = len(plan.classes) if plan.classes else None
    model = build_model(ModelSpec.of(settings), plan.n_features, classes, target)
    train(model, x, y, task, TrainConfig(epochs=epochs, batch_size=64, learning_rate=3e-3))  # type: ignore[arg-type]
    weights = to_safetensors(model.state_dict())
    unit = next((c.unit for c in contract.columns if c.name == plan.label), None)
    package = ModelPackage(
        architecture=settings, features=plan.described(norm, unit), contract=document
    )
    write_folder(folder, weights, package, key or Ed25519PrivateKey.generate())
    return folder


def with_flag(table: pa.Table) -> pa.Table:
    """``table`` with a boolean feature (whether the machine ran), as some contracts have."""
    if "running" in table.column_names:
        return table
    running = np.random.default_rng(len(table)).random(len(table)) > 0.1
    return table.append_column("running", pa.array(running))


def own_normalization(table: pa.Table, columns: list[str]) -> Normalization:
    """The mean and spread of each of ``columns`` in ``table``."""
    return Normalization(
        mean={c: float(np.nanmean(table[c].to_numpy())) for c in columns},
        std={c: float(np.nanstd(table[c].to_numpy())) for c in columns},
    )


def manifest_for(package: ModelPackage, weights_sha256: str) -> ModelManifest:
    """A manifest as the hub seals one, for ``package`` and weights of that sha256."""
    from fedpark.contracts import contract_sha256

    contract = Contract.model_validate(package.contract)
    return ModelManifest(
        experiment=ManifestExperiment(
            id="exp-0123456789ab", name="lines", launched_by="alice", organization="uni"
        ),
        contract=ManifestContract(
            id=contract.id, version=contract.version, sha256=contract_sha256(contract)
        ),
        participants=["acme", "bravo"],
        invited=["acme", "bravo"],
        min_factories=2,
        rounds=[],
        restarts=[],
        strategy=ManifestStrategy(name="fedavg", params={}),
        model=package.architecture,
        training=TrainSettings(),
        weights=ManifestWeights(sha256=weights_sha256),
        package=package,
        fedpark_version="0",
        started_at=None,
        ended_at="2026-12-01T00:00:00+00:00",
        summary={},
    )


def write_folder(
    folder: Path, weights: bytes, package: ModelPackage, key: Ed25519PrivateKey
) -> None:
    manifest = manifest_for(package, hashlib.sha256(weights).hexdigest())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "manifest.json").write_bytes(manifest.canonical())
    signature = sign_manifest(manifest, "exp-0123456789ab", "http://hub", key)
    (folder / "manifest.sig.json").write_bytes(canonical(signature))
    (folder / "hub-key.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
