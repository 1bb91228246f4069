"""What a trained model needs to run anywhere: signed inside its provenance manifest.

The ServerApp describes the model it trained (architecture, feature plan, label names, the
approved contract itself) and the hub puts that description in the manifest it signs, so a
partner's ``fedpark model predict`` or ``export-onnx`` rebuilds the exact pipeline the
factories trained with from the downloaded folder alone, offline.

Torch-free and Flower-free like the rest of the protocol.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from fedpark.experiments.protocol.base import Wire
from fedpark.experiments.protocol.plan import ModelSettings


class Normalization(Wire):
    """Standardization per numeric column, pooled over every factory's declared profile."""

    mean: dict[str, float] = Field(default_factory=dict)
    std: dict[str, float] = Field(default_factory=dict)


# A class of a label: the contract's allowed value as JSON holds it.
LabelValue = str | int | float | bool


class CategoricalFeature(Wire):
    """A string column one-hot encoded over the contract's allowed values, in this order."""

    column: str = Field(max_length=200)
    values: list[str] = Field(min_length=1, max_length=10_000)


class FeatureSpec(Wire):
    """Which columns become which inputs, in the order the network reads them.

    Numeric columns (booleans as 0/1) are standardized with ``normalization`` (the pooled
    statistics of the factories that trained it); a missing or non-finite value becomes 0,
    the mean. A model trained with each factory's own statistics (its architecture's
    ``normalization`` is ``factory``) needs the running plant's: ``reference`` then names the
    file of that plant's history they were computed from, and until it is set the pooled
    statistics here are not the ones to run it with. Categorical columns follow, one-hot.
    ``time`` orders rows and ``series`` keeps each series' rows together for windows; neither
    is an input.
    """

    numeric: list[str] = Field(max_length=10_000)
    categorical: list[CategoricalFeature] = Field(default_factory=list, max_length=10_000)
    normalization: Normalization
    reference: str | None = Field(
        default=None,
        exclude_if=lambda reference: reference is None,  # packages as before when unset
        max_length=500,
        description="A factory-normalized model: the plant's data file (its name) whose "
        "statistics ``normalization`` holds",
    )
    label: str = Field(max_length=200)
    label_unit: str | None = Field(default=None, max_length=100)
    classes: list[LabelValue] | None = Field(
        default=None, max_length=10_000, description="Label names by output index"
    )
    time: str | None = Field(default=None, max_length=200)
    series: str | None = Field(default=None, max_length=200)

    @property
    def n_features(self) -> int:
        return len(self.numeric) + sum(len(c.values) for c in self.categorical)

    @property
    def inputs(self) -> list[str]:
        """The contract columns the model reads, in order."""
        return [*self.numeric, *(c.column for c in self.categorical)]

    @model_validator(mode="after")
    def _normalized(self) -> Self:
        missing = [c for c in self.numeric if c not in self.normalization.mean]
        if missing or any(c not in self.normalization.std for c in self.numeric):
            raise ValueError(f"no normalization for {', '.join(missing) or 'a numeric column'}")
        return self


class ModelPackage(Wire):
    """Everything needed to run the weights: the network, its inputs, its outputs."""

    format: Literal["fedpark-model-package/v1"] = "fedpark-model-package/v1"
    architecture: ModelSettings
    features: FeatureSpec
    contract: dict[str, Any] = Field(description="The approved contract document it was trained on")

    @property
    def task(self) -> str:
        return self.architecture.task

    @property
    def window(self) -> int | None:
        """Rows per prediction: the window of a temporal model, None for one row."""
        return self.architecture.window if self.architecture.kind == "tcnn" else None

    @property
    def needs_reference(self) -> bool:
        """Trained on each factory's own statistics, and not yet given this plant's."""
        return self.architecture.normalization == "factory" and self.features.reference is None

    @property
    def n_outputs(self) -> int:
        classes = self.features.classes
        return len(classes) if self.task == "classification" and classes else 1

    @model_validator(mode="after")
    def _classes(self) -> Self:
        if self.task == "classification" and not self.features.classes:
            raise ValueError("a classifier's package names its classes")
        return self
