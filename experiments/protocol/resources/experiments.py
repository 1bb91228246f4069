"""Bodies of the experiment, run-reporting and model endpoints."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fedpark.contracts.names import Slug
from fedpark.contracts.ref import ContractRef
from fedpark.experiments.protocol.base import MAX_FACTORIES
from fedpark.experiments.protocol.package import ModelPackage
from fedpark.experiments.protocol.plan import TrainingPlan
from fedpark.experiments.protocol.reports import RoundReport


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExperimentCreate(TrainingPlan):
    """A launch: which contract version and factories, and the training plan (the protocol's
    :class:`TrainingPlan`, so the hub and the Flower apps check the same limits)."""

    name: str = Field(min_length=1, max_length=200)
    contract_id: Slug
    contract_version: str = Field(max_length=64)
    participants: list[str] = Field(
        min_length=1, max_length=MAX_FACTORIES, description="Factory orgs"
    )

    @property
    def contract(self) -> ContractRef:
        return ContractRef(id=self.contract_id, version=self.contract_version)

    @model_validator(mode="after")
    def _participants(self) -> Self:
        if len(set(self.participants)) != len(self.participants):
            raise ValueError("participants lists an organization twice")
        if self.min_factories > len(self.participants):
            raise ValueError("min_factories is larger than the number of participants")
        return self


class ExperimentStatus(StrEnum):
    PENDING = "pending"  # launched; Flower has not reported the run running yet
    RUNNING = "running"
    FINISHED = "finished"  # its model is sealed
    FAILED = "failed"
    STOPPED = "stopped"


class Restart(BaseModel):
    """An experiment's Flower run was lost (its SuperLink restarted) and the hub resumed it."""

    at: datetime
    from_round: int = Field(description="The checkpoint the continuation started from")
    reason: str = Field(description="What Flower said about the lost run")
    flower_run_id: str | None = Field(description="The lost run")


# A resumed run, as the catalog keeps it and the API shows it.
RestartPublic = Restart


class ExperimentPublic(BaseModel):
    id: str
    name: str
    contract_id: str
    contract_version: str
    contract_sha256: str
    org_id: str
    created_by: str
    status: ExperimentStatus
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
    report: RoundReport | None = Field(description="None until the round has reported")
    checkpoint_sha256: str | None
    created_at: datetime


# The ServerApp's round report: one typed model, shared with the Flower apps.
RoundReportCreate = RoundReport


class RunFinishCreate(_Strict):
    summary: dict[str, Any] = Field(default_factory=dict)
    package: ModelPackage = Field(description="What running the model needs (signed with it)")


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
