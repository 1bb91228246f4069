"""What one federated run needs to know: built by the hub, read by the ServerApp and every
ClientApp of the run from Flower's run config (one key, :data:`SPEC_KEY`, holding the JSON).

The settings a researcher chooses (:class:`TrainingPlan`) are defined here once: the hub's
launch body extends them with what names the experiment, :class:`RunSpec` with what the hub
adds (the approved contract, pooled normalization, where to report). Their limits are the
same on both sides because they are the same classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Literal, Self

import pyarrow as pa
from pydantic import Field, model_validator

from fedpark.contracts.model import Column, ColumnRole, Contract
from fedpark.contracts.report import DataProfile, pooled_moments
from fedpark.contracts.types import is_numeric
from fedpark.experiments.protocol.base import Wire

SPEC_KEY = "fedpark-spec"


class StrategyName(StrEnum):
    """Flower's strategies FedPark runs (``flwr.serverapp.strategy``)."""

    FEDAVG = "fedavg"
    FEDPROX = "fedprox"
    FEDAVGM = "fedavgm"
    FEDADAM = "fedadam"
    FEDMEDIAN = "fedmedian"
    FEDTRIMMEDAVG = "fedtrimmedavg"
    KRUM = "krum"


# The parameters each strategy takes beyond the node counts (the ServerApp passes them to
# Flower's class of that name).
STRATEGY_PARAMS: dict[StrategyName, frozenset[str]] = {
    StrategyName.FEDAVG: frozenset(),
    StrategyName.FEDPROX: frozenset({"proximal_mu"}),
    StrategyName.FEDAVGM: frozenset({"server_learning_rate", "server_momentum"}),
    StrategyName.FEDADAM: frozenset({"eta", "eta_l", "beta_1", "beta_2", "tau"}),
    StrategyName.FEDMEDIAN: frozenset(),
    StrategyName.FEDTRIMMEDAVG: frozenset({"beta"}),
    StrategyName.KRUM: frozenset({"num_malicious_nodes"}),
}
# Client-side differential privacy with fixed clipping wraps any of them.
DP_PARAMS = frozenset({"noise_multiplier", "clipping_norm"})
# Parameters that count nodes: Flower slices with them, so they must be whole numbers.
COUNT_PARAMS = frozenset({"num_malicious_nodes"})


def check_strategy_params(name: StrategyName, params: dict[str, float]) -> None:
    """Raise ValueError unless ``params`` are parameters ``name`` takes (or the DP pair)."""
    unknown = set(params) - STRATEGY_PARAMS[name] - DP_PARAMS
    if unknown:
        raise ValueError(f"{name} does not take {', '.join(sorted(unknown))}")
    dp = DP_PARAMS & set(params)
    if dp and dp != DP_PARAMS:
        raise ValueError("differential privacy needs both noise_multiplier and clipping_norm")
    for key in COUNT_PARAMS & set(params):
        if float(params[key]) != int(params[key]) or params[key] < 0:
            raise ValueError(f"{key} must be a whole number, not {params[key]}")


class ModelSettings(Wire):
    kind: Literal["mlp", "tcnn"] = "mlp"
    task: Literal["classification", "regression"] = "classification"
    hidden: tuple[int, ...] = Field(default=(64, 64), min_length=1, max_length=8)
    window: int = Field(default=32, ge=2, le=4096)
    kernel_size: int = Field(default=5, ge=1, le=64)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    series: str | None = Field(
        default=None,
        max_length=200,
        description="An id column of the contract (an engine, a production run): windows "
        "never span two of its series; its values never reach the model",
    )

    @model_validator(mode="after")
    def _widths(self) -> Self:
        if any(not 1 <= h <= 4096 for h in self.hidden):
            raise ValueError("hidden widths must be between 1 and 4096")
        return self


class TrainSettings(Wire):
    epochs: int = Field(default=1, ge=1, le=100)
    batch_size: int = Field(default=64, ge=1, le=65536)
    learning_rate: float = Field(default=1e-3, gt=0, le=10)
    eval_fraction: float = Field(default=0.2, gt=0, lt=1)


class TrainingPlan(Wire):
    """How to train: what a researcher chooses for an experiment."""

    model: ModelSettings = ModelSettings()
    train: TrainSettings = TrainSettings()
    strategy: StrategyName = StrategyName.FEDAVG
    strategy_params: dict[str, float] = Field(default_factory=dict, max_length=10)
    rounds: int = Field(default=3, ge=1, le=1000)
    min_factories: int = Field(default=2, ge=1, le=200)
    rounds_below_k: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Rounds whose updates come from fewer than min_factories factories (they "
        "aggregate nothing) before the experiment fails; 1: the first such round ends it",
    )
    round_timeout: float = Field(default=600, ge=10, le=86400, description="Seconds")
    seed: int = Field(default=0, ge=0, le=2**31)

    @model_validator(mode="after")
    def _strategy(self) -> Self:
        check_strategy_params(self.strategy, self.strategy_params)
        return self

    def plan(self) -> TrainingPlan:
        """Only the plan's own fields (of a subclass that carries more)."""
        return TrainingPlan.model_validate(self.model_dump(include=set(TrainingPlan.model_fields)))


def is_scalar_number(column: Column) -> bool:
    """A column the model reads as one standardized number (booleans as 0/1)."""
    dtype = column.arrow_type
    return is_numeric(dtype) or bool(pa.types.is_boolean(dtype))


def standardized_columns(contract: Contract, task: str) -> list[str]:
    """The columns whose pooled mean and spread the hub puts in :class:`Normalization`: the
    numeric features, and for regression the label (the model's output scale)."""
    names = [
        c.name for c in contract.columns if c.role is ColumnRole.FEATURE and is_scalar_number(c)
    ]
    if task == "regression":
        names.extend(c.name for c in contract.columns if c.role is ColumnRole.LABEL)
    return names


class Normalization(Wire):
    """Standardization per numeric column, pooled over every factory's declared profile."""

    mean: dict[str, float] = Field(default_factory=dict)
    std: dict[str, float] = Field(default_factory=dict)


def pooled_normalization(profiles: Sequence[DataProfile], columns: Sequence[str]) -> Normalization:
    """Standardization pooled over all factories' rows, from their declared profiles alone."""
    pooled = pooled_moments(profiles, columns)
    return Normalization(
        mean={name: m for name, (m, _) in pooled.items()},
        std={name: s for name, (_, s) in pooled.items()},
    )


class DirectoryOutput(Wire):
    """Write rounds, checkpoints and the final model to a folder (runs without a hub)."""

    directory: str


class HubOutput(Wire):
    """Report rounds, checkpoints and the final model to the hub with the run's token."""

    hub_url: str
    run_token: str


class RunSpec(TrainingPlan):
    """Everything one Flower run of an experiment needs."""

    experiment_id: str
    contract: dict[str, Any] = Field(description="The approved contract document")
    contract_sha256: str
    participants: list[str] = Field(
        default_factory=list,
        description="The invited factories (organization ids); a factory not listed does "
        "not train, whatever it holds. Empty: every connected factory (runs without a hub)",
    )
    normalization: Normalization = Normalization()
    start_round: int = Field(
        default=0,
        ge=0,
        description="Rounds already done: the run continues from that round's checkpoint "
        "(the hub resumes a run its SuperLink lost)",
    )
    output: DirectoryOutput | HubOutput

    def without_secrets(self) -> dict[str, Any]:
        """The spec as the hub keeps it (to resume the run): never the run's token."""
        return self.model_dump(mode="json", exclude={"output"})
