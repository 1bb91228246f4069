"""What a researcher chooses for an experiment: model, training, strategy and rounds.

Defined once here: the hub's launch body extends :class:`TrainingPlan` with what names the
experiment and :class:`~fedpark.experiments.protocol.spec.RunSpec` with what the hub adds, so
their limits are the same on both sides. Pydantic only: the command line checks a plan
without loading the Arrow stack.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self

from pydantic import Field, model_validator

from fedpark.experiments.protocol.base import MAX_FACTORIES, Wire


class StrategyName(StrEnum):
    """Flower's strategies FedPark runs (``flwr.serverapp.strategy``)."""

    FEDAVG = "fedavg"
    FEDPROX = "fedprox"
    FEDAVGM = "fedavgm"
    FEDADAM = "fedadam"
    FEDMEDIAN = "fedmedian"
    FEDTRIMMEDAVG = "fedtrimmedavg"
    KRUM = "krum"
    SCAFFOLD = "scaffold"  # FedAvg with control variates (FedPark's, on Flower's FedAvg)


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
    StrategyName.SCAFFOLD: frozenset(),
}
# Client-side differential privacy with fixed clipping wraps any of them but SCAFFOLD.
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
    if dp and name is StrategyName.SCAFFOLD:
        # Flower's clipping covers the model update only: a factory's control variate (its
        # mean gradient) would leave unclipped and unnoised.
        raise ValueError("scaffold cannot run with differential privacy")
    for key in COUNT_PARAMS & set(params):
        if float(params[key]) != int(params[key]) or params[key] < 0:
            raise ValueError(f"{key} must be a whole number, not {params[key]}")


# Which round's global weights a run publishes as its model: the last aggregated round's, or
# the round best by the task's headline metric (macro-F1 for a classifier, RMSE for a
# regressor; see fedpark.experiments.protocol.manifest.choose_round).
PublishRule = Literal["last", "best"]


# How each factory standardizes its numeric readings before the model sees them:
# "pooled": with the mean and spread pooled over every factory's declared profile (the hub
# computes them; every factory feeds the model the same scale); "factory": each with its own
# data's mean and spread, which it never sends. Plants that run at different operating points
# (another product grade, another rate) then all feed the model deviations from their own
# level, so a fault learned at one plant's operating point is recognized at another's; the
# model then needs the plant's own statistics wherever it runs (`fedpark model predict
# --reference`).
NormalizationScope = Literal["pooled", "factory"]


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
    # Left out of the JSON when pooled: specs and packages read as before by FedPark
    # versions that predate the choice (their models forbid unknown fields).
    normalization: NormalizationScope = Field(
        default="pooled",
        exclude_if=lambda scope: scope == "pooled",
        description="Standardize readings with statistics pooled over all factories "
        "(pooled) or with each factory's own (factory: for plants at different operating "
        "points; the model then needs the plant's statistics where it runs)",
    )

    @model_validator(mode="after")
    def _widths(self) -> Self:
        if any(not 1 <= h <= 4096 for h in self.hidden):
            raise ValueError("hidden widths must be between 1 and 4096")
        if self.normalization == "factory" and self.task == "regression":
            # The inputs would lose each plant's level while the target keeps the park's
            # scale: a label whose level follows the operating point would be biased.
            raise ValueError("normalization 'factory' is for classification")
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
    min_factories: int = Field(default=2, ge=1, le=MAX_FACTORIES)
    rounds_below_k: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Rounds whose updates come from fewer than min_factories factories (they "
        "aggregate nothing) before the experiment fails; 1: the first such round ends it",
    )
    round_timeout: float = Field(default=600, ge=10, le=86400, description="Seconds")
    seed: int = Field(default=0, ge=0, le=2**31)
    local_baseline: bool = Field(
        default=True,
        description="After the last round each factory also trains a model on its own rows "
        "alone with the same budget, and reports both models' held-out metrics (only metrics "
        "leave): what joining gained it",
    )
    publish: PublishRule = Field(
        default="last",
        description="The model a run publishes: the last round's weights, or the best "
        "round's by the held-out headline metric (macro_f1; rmse for regression). The "
        "manifest records which round and why",
    )

    @model_validator(mode="after")
    def _strategy(self) -> Self:
        check_strategy_params(self.strategy, self.strategy_params)
        return self

    def plan(self) -> TrainingPlan:
        """Only the plan's own fields (of a subclass that carries more)."""
        return TrainingPlan.model_validate(self.model_dump(include=set(TrainingPlan.model_fields)))
