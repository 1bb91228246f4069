"""What one federated run needs to know, carried in Flower's run config as JSON.

The run config is shared by the ServerApp and every ClientApp of the run; FedPark declares one
key, ``fedpark-spec``, and puts this document there.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fedpark.experiments.models import ModelSpec

SPEC_KEY = "fedpark-spec"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSettings(_Model):
    kind: Literal["mlp", "tcnn"] = "mlp"
    task: Literal["classification", "regression"] = "classification"
    hidden: tuple[int, ...] = (64, 64)
    window: int = Field(default=32, ge=2, le=4096)
    kernel_size: int = Field(default=5, ge=1, le=64)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    series: str | None = Field(
        default=None, description="An id column whose series no window may span"
    )

    def spec(self) -> ModelSpec:
        return ModelSpec(**self.model_dump(exclude={"series"}))


class TrainSettings(_Model):
    epochs: int = Field(default=1, ge=1, le=1000)
    batch_size: int = Field(default=64, ge=1, le=65536)
    learning_rate: float = Field(default=1e-3, gt=0, le=10)
    eval_fraction: float = Field(default=0.2, gt=0, lt=1)


class Normalization(_Model):
    mean: dict[str, float] = Field(default_factory=dict)
    std: dict[str, float] = Field(default_factory=dict)


class DirectoryOutput(_Model):
    """Write rounds, checkpoints and the final model to a folder (runs without a hub)."""

    directory: str


class HubOutput(_Model):
    """Report rounds, checkpoints and the final model to the hub with the run's token."""

    hub_url: str
    run_token: str


class RunSpec(_Model):
    experiment_id: str
    contract: dict[str, Any] = Field(description="The approved contract document")
    contract_sha256: str
    model: ModelSettings = ModelSettings()
    train: TrainSettings = TrainSettings()
    strategy: str = "fedavg"
    strategy_params: dict[str, float] = Field(default_factory=dict)
    rounds: int = Field(default=3, ge=1, le=10000)
    participants: list[str] = Field(
        default_factory=list,
        description="The invited factories (organization ids); a factory not listed does "
        "not train, whatever it holds. Empty: every connected factory (runs without a hub)",
    )
    min_factories: int = Field(default=2, ge=1)
    rounds_below_k: int = Field(
        default=1,
        ge=1,
        description="Rounds with fewer than min_factories contributors that end the run",
    )
    round_timeout: float = Field(default=600, gt=0)
    normalization: Normalization = Normalization()
    seed: int = 0
    start_round: int = Field(
        default=0,
        ge=0,
        description="Rounds already done: the run continues from that round's checkpoint "
        "(the hub resumes a run its SuperLink lost)",
    )
    output: DirectoryOutput | HubOutput
