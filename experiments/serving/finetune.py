"""Personalization at the factory: a few local epochs from the federated weights, on the
factory's own rows only, measured before and after on its most recent rows (held out, as in
federated training). The result is a model folder of its own (see :mod:`.folder`); it never
leaves the factory unless someone uploads it."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from fedpark.contracts import validate_file
from fedpark.contracts.dialect import CsvOptions
from fedpark.contracts.errors import DataError
from fedpark.contracts.reader import open_source
from fedpark.experiments.features import FeaturePlan, model_arrays, recent_split
from fedpark.experiments.protocol.manifest import ManifestWeights
from fedpark.experiments.serving.folder import (
    KEY,
    MANIFEST,
    PARENT,
    SIGNATURE,
    WEIGHTS,
    LocalData,
    LocalManifest,
    LocalParent,
    ModelFolder,
)
from fedpark.experiments.serving.network import load_network
from fedpark.experiments.serving.predict import PredictionError
from fedpark.experiments.serving.reference import localized
from fedpark.experiments.training import TrainConfig, evaluate, train
from fedpark.experiments.weights import to_safetensors


def finetune(
    model: ModelFolder,
    data: Path,
    output: Path,
    *,
    epochs: int = 5,
    learning_rate: float | None = None,
    csv: CsvOptions | None = None,
) -> LocalManifest:
    """Fine-tune ``model`` on ``data`` into the new folder ``output``.

    Raises :class:`PredictionError` when the data cannot be read or breaks the contract, or
    leaves too few rows to train and evaluate on; ``output`` is then not created. ``csv``:
    a CSV dialect forced (otherwise detected).
    """
    if output.exists() and any(output.iterdir()):
        raise PredictionError(f"{output} already holds files: choose a new folder")
    contract = model.contract
    try:
        result = validate_file(contract, data, csv_options=csv)
    except DataError as exc:
        raise PredictionError(f"{data.name} {exc.failure.describe()}") from None
    report = result.report
    if not report.passed:
        counts = ", ".join(f"{rule}={n}" for rule, n in sorted(report.rule_counts().items()))
        raise PredictionError(f"the data breaks the model's contract: {counts}", report)
    if model.package.architecture.normalization == "factory":
        # the plant's own statistics, from the data it tunes on (a fine-tuned folder's too:
        # it is this plant's data now)
        model = localized(model, result.profile, data, "data")
    package = model.package
    plan = FeaturePlan.of(package.features)
    types = {c.name: c.arrow_type for c in contract.columns}
    source = open_source(data, csv_types=types, csv_options=csv)
    table = pa.Table.from_batches(list(source.batches(plan.columns, 1 << 16)))
    x, y, series = model_arrays(table, plan, package.features.normalization, package.window)
    training = model.manifest.training
    (train_x, train_y), (held_x, held_y) = recent_split(x, y, training.eval_fraction, series)
    if len(train_x) < 2 or len(held_x) < 1:
        raise PredictionError(f"{data.name} has too few labelled rows to fine-tune on")
    network = load_network(model)
    task = package.task
    classes = package.n_outputs if task == "classification" else None
    before = evaluate(network, held_x, held_y, task, classes)  # type: ignore[arg-type]
    rate = learning_rate or training.learning_rate
    config = TrainConfig(epochs=epochs, batch_size=training.batch_size, learning_rate=rate)
    train(network, train_x, train_y, task, config)  # type: ignore[arg-type]
    after = evaluate(network, held_x, held_y, task, classes)  # type: ignore[arg-type]
    weights = to_safetensors(network.state_dict(), {"fine_tuned_from": model.weights_sha256})
    local = LocalManifest(
        parent=LocalParent(
            experiment_id=model.manifest.experiment.id,
            weights_sha256=model.weights_sha256,
            manifest_sha256=model.manifest_sha256,
        ),
        weights=ManifestWeights(sha256=hashlib.sha256(weights).hexdigest()),
        package=package,
        data=LocalData(source=data.name, train_rows=len(train_x), held_out_rows=len(held_x)),
        epochs=epochs,
        learning_rate=rate,
        before=before,
        after=after,
        fedpark_version=_version(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    _write(model, output, weights, local)
    return local


def _write(model: ModelFolder, output: Path, weights: bytes, local: LocalManifest) -> None:
    """Build the folder beside ``output`` and move it into place whole.

    Raises
    ------
    PredictionError
        The folder cannot be written (no room, no permission, not a folder above it).
    """
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    except OSError:
        raise PredictionError(f"cannot write {output}") from None
    try:
        signed = model.signed_dir
        (staging / PARENT).mkdir()
        for name in (MANIFEST, SIGNATURE):
            shutil.copyfile(signed / name, staging / PARENT / name)
        shutil.copyfile(model.path / KEY, staging / KEY)
        (staging / WEIGHTS).write_bytes(weights)
        (staging / MANIFEST).write_text(local.model_dump_json(indent=2))
        if output.exists():
            output.rmdir()  # empty (checked before training)
        staging.replace(output)
    except OSError:
        raise PredictionError(f"cannot write {output}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fedpark")
    except PackageNotFoundError:
        return "unknown"
