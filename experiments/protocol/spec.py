"""What one federated run needs to know: built by the hub, read by the ServerApp and every
ClientApp of the run from Flower's run config (one key, :data:`SPEC_KEY`, holding the JSON).

The settings a researcher chooses (:class:`TrainingPlan`) are defined here once: the hub's
launch body extends them with what names the experiment, :class:`RunSpec` with what the hub
adds (the approved contract, pooled normalization, where to report). Their limits are the
same on both sides because they are the same classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from pydantic import Field

from fedpark.contracts.model import Column, ColumnRole, Contract
from fedpark.contracts.report import DataProfile, pooled_moments
from fedpark.contracts.types import is_numeric
from fedpark.experiments.protocol.base import Wire
from fedpark.experiments.protocol.package import Normalization
from fedpark.experiments.protocol.plan import TrainingPlan

SPEC_KEY = "fedpark-spec"


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
