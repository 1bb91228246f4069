"""A plant's own statistics for a model trained with ``normalization: factory``.

Such a model was trained on each factory's readings standardized with that factory's own mean
and spread (plants at different operating points then all show it deviations from their own
level). Wherever it runs it needs the running plant's statistics: here they are computed from
a file of that plant's history (the file it trained on, or any stretch of ordinary operation)
in one streaming pass of the contract's validator, the same profile the factory's ClientApp
standardized with during training.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from fedpark.contracts import validate_file
from fedpark.contracts.dialect import CsvOptions
from fedpark.contracts.errors import DataError
from fedpark.contracts.reader import CsvValueError, open_source
from fedpark.contracts.report import DataProfile
from fedpark.contracts.types import is_numeric
from fedpark.experiments.features import FeaturePlan, normalization_for
from fedpark.experiments.serving.folder import ModelFolder
from fedpark.experiments.serving.predict import PredictionError, prediction_contract

# Fewer rows than this describe a moment, not a plant: their mean and spread would mislead.
MIN_REFERENCE_ROWS = 100


def with_reference(model: ModelFolder, data: Path, csv: CsvOptions | None = None) -> ModelFolder:
    """``model`` set to standardize with the statistics of ``data``, a file of the running
    plant's history that meets the model's contract (the label may be absent).

    Raises :class:`PredictionError` (FedPark's words) when the model uses pooled statistics
    or already carries a plant's, or the file cannot be read, breaks the contract, is too
    short, or has no readings of a numeric input.
    """
    package = model.package
    if package.architecture.normalization != "factory":
        raise PredictionError(
            "this model standardizes with the statistics pooled over the factories that "
            "trained it; --reference is only for models trained with normalization 'factory'"
        )
    if package.features.reference is not None:
        raise PredictionError(
            "this model already standardizes with its plant's statistics (from "
            f"{package.features.reference}): run it without --reference"
        )
    return localized(model, _profile(model, data, csv), data, "reference")


def localized(model: ModelFolder, profile: DataProfile, data: Path, what: str) -> ModelFolder:
    """``model`` standardizing with the statistics of ``profile``, the validated profile of
    the plant's file ``data`` (``what`` names it in messages), once it is shown to describe
    a plant: readings of every measured input, at least :data:`MIN_REFERENCE_ROWS` rows."""
    package = model.package
    # Measured columns without a reading (flags have no moments: they stay 0/1 as trained).
    measured = {c.name for c in model.contract.columns if is_numeric(c.arrow_type)}
    inputs = set(package.features.numeric) & measured
    empty = [
        c.name
        for c in profile.columns
        if c.name in inputs and (c.numeric is None or not c.numeric.count)
    ]
    if empty or not profile.rows:
        raise PredictionError(
            f"the {what} {data.name} has no readings of "
            f"{', '.join(empty[:5]) or 'any input'}: its statistics cannot be computed"
        )
    if profile.rows < MIN_REFERENCE_ROWS:
        raise PredictionError(
            f"the {what} {data.name} has {profile.rows} rows: a plant's statistics need at "
            f"least {MIN_REFERENCE_ROWS} (a longer stretch of its history)"
        )
    plan = FeaturePlan.of(package.features)
    own = normalization_for("factory", package.features.normalization, profile, plan)
    try:
        with data.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        raise PredictionError(f"cannot read the {what} {data.name}") from None
    named = f"{data.name} ({profile.rows} rows, sha256 {digest[:12]})"
    features = package.features.model_copy(update={"normalization": own, "reference": named})
    return dataclasses.replace(model, package=package.model_copy(update={"features": features}))


def _profile(model: ModelFolder, data: Path, csv: CsvOptions | None) -> DataProfile:
    """The profile of the reference ``data`` under the model's contract (label optional)."""
    contract = model.contract
    types = {c.name: c.arrow_type for c in contract.columns}
    try:
        names = set(open_source(data, csv_types=types, csv_options=csv).schema.names)
    except CsvValueError:  # a cell of another type: the validator's report names its row
        names = set(types)
    except DataError as exc:
        raise PredictionError(f"reference {data.name} {exc.failure.describe()}") from None
    except OSError:
        raise PredictionError(f"cannot read the reference {data.name}") from None
    view = prediction_contract(contract, with_label=model.package.features.label in names)
    try:
        result = validate_file(view, data, csv_options=csv)
    except DataError as exc:
        raise PredictionError(f"reference {data.name} {exc.failure.describe()}") from None
    except OSError:
        raise PredictionError(f"cannot read the reference {data.name}") from None
    if not result.report.passed:
        counts = ", ".join(f"{r}={n}" for r, n in sorted(result.report.rule_counts().items()))
        raise PredictionError(
            f"the reference {data.name} breaks the model's contract: {counts or 'schema'}",
            result.report,
        )
    return result.profile
