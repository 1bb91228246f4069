"""Bodies of the experiment, run-reporting and model endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fedpark.experiments.protocol import RoundReport

Slug = Field(min_length=2, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")

# Parameters each of Flower's strategies accepts (the ServerApp checks them again).
STRATEGY_PARAMS: dict[str, frozenset[str]] = {
    "fedavg": frozenset(),
    "fedprox": frozenset({"proximal_mu"}),
    "fedavgm": frozenset({"server_learning_rate", "server_momentum"}),
    "fedadam": frozenset({"eta", "eta_l", "beta_1", "beta_2", "tau"}),
    "fedmedian": frozenset(),
    "fedtrimmedavg": frozenset({"beta"}),
    "krum": frozenset({"num_malicious_nodes"}),
}
DP_PARAMS = frozenset({"noise_multiplier", "clipping_norm"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSettings(_Strict):
    kind: Literal["mlp", "tcnn"] = "mlp"
    task: Literal["classification", "regression"] = "classification"
    hidden: list[int] = Field(default=[64, 64], min_length=1, max_length=8)
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
    def _widths(self) -> ModelSettings:
        if any(not 1 <= h <= 4096 for h in self.hidden):
            raise ValueError("hidden widths must be between 1 and 4096")
        return self


class TrainSettings(_Strict):
    epochs: int = Field(default=1, ge=1, le=100)
    batch_size: int = Field(default=64, ge=1, le=65536)
    learning_rate: float = Field(default=1e-3, gt=0, le=10)
    eval_fraction: float = Field(default=0.2, gt=0, lt=1)


class ExperimentCreate(_Strict):
    name: str = Field(min_length=1, max_length=200)
    contract_id: str = Slug
    contract_version: str = Field(max_length=64)
    participants: list[str] = Field(min_length=1, max_length=200, description="Factory orgs")
    model: ModelSettings = ModelSettings()
    train: TrainSettings = TrainSettings()
    strategy: Literal[
        "fedavg", "fedprox", "fedavgm", "fedadam", "fedmedian", "fedtrimmedavg", "krum"
    ] = "fedavg"
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
    def _consistent(self) -> ExperimentCreate:
        unknown = set(self.strategy_params) - STRATEGY_PARAMS[self.strategy] - DP_PARAMS
        if unknown:
            raise ValueError(f"{self.strategy} does not take {', '.join(sorted(unknown))}")
        dp = DP_PARAMS & set(self.strategy_params)
        if dp and dp != DP_PARAMS:
            raise ValueError("differential privacy needs both noise_multiplier and clipping_norm")
        if len(set(self.participants)) != len(self.participants):
            raise ValueError("participants lists an organization twice")
        if self.min_factories > len(self.participants):
            raise ValueError("min_factories is larger than the number of participants")
        return self


class RestartPublic(BaseModel):
    """The experiment's Flower run was lost (its SuperLink restarted) and the hub resumed it."""

    at: datetime
    from_round: int = Field(description="The checkpoint the continuation started from")
    reason: str = Field(description="What Flower said about the lost run")
    flower_run_id: str | None = Field(description="The lost run")


class ExperimentPublic(BaseModel):
    id: str
    name: str
    contract_id: str
    contract_version: str
    contract_sha256: str
    org_id: str
    created_by: str
    status: str
    participants: list[str]
    rounds: int
    rounds_completed: int
    flower_run_id: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None
    settings: dict[str, Any]
    restarts: list[RestartPublic] = Field(default_factory=list)


class RoundPublic(BaseModel):
    round: int
    report: dict[str, Any]
    checkpoint_sha256: str | None
    created_at: datetime


# The ServerApp's round report: one typed model, shared with the Flower apps.
RoundReportCreate = RoundReport


class RunFinishCreate(_Strict):
    summary: dict[str, Any] = Field(default_factory=dict)


class RunFailureCreate(_Strict):
    reason: str = Field(min_length=1, max_length=4000)


class ModelPublic(BaseModel):
    experiment_id: str
    weights_sha256: str
    manifest: dict[str, Any]
    created_at: datetime


class ModelSummaryPublic(BaseModel):
    experiment_id: str
    name: str
    contract_id: str
    contract_version: str
    org_id: str
    contributors: list[str] = Field(
        description="The factories whose updates are in the model (not those only invited)"
    )
    weights_sha256: str
    created_at: datetime


class FederationPublic(BaseModel):
    fleet_address: str = Field(description="host:port of the SuperLink's Fleet API")
    org_id: str
    hub_url: str
    hub_key_pem: str
    hub_key_id: str
    fleet_ca_pem: str | None = Field(
        default=None, description="The park's CA to trust for the Fleet API; None: plain HTTP"
    )
    node_auth: bool = Field(
        default=False, description="Register a node key (POST /federation/nodes) before joining"
    )


class NodeCreate(_Strict):
    public_key: str = Field(
        min_length=32,
        max_length=4000,
        description="The SuperNode's EC public key (NIST curve), OpenSSH or PEM",
    )


class NodePublic(BaseModel):
    node_id: str
    org_id: str
