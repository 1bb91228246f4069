"""The states of a contract version and of an experiment, each with one transition table.

Services move an object only along its table (the catalog's conditional UPDATE makes sure
one of several concurrent moves wins); pages and answers read the same enums::

    contract version
        draft ─submit─► submitted ─approve─► approved ─deprecate─► deprecated ─retire─► retired
          ▲                 │
          └─edit─ rejected ◄┘ reject

    experiment
        pending ──► running ──► finished | failed | stopped
           └──────────────────► finished | failed | stopped
"""

from __future__ import annotations

from fedpark.experiments.protocol.resources.contracts import ContractAction, ContractStatus
from fedpark.experiments.protocol.resources.experiments import ExperimentStatus

__all__ = [
    "ACTIVE",
    "BOUND",
    "CONTRACT_TRANSITIONS",
    "EDITABLE",
    "EXPERIMENT_TRANSITIONS",
    "PUBLIC",
    "ContractAction",
    "ContractStatus",
    "ExperimentStatus",
]

# action -> (the states it may start from, the state it leads to)
CONTRACT_TRANSITIONS: dict[ContractAction, tuple[frozenset[ContractStatus], ContractStatus]] = {
    ContractAction.SUBMIT: (frozenset({ContractStatus.DRAFT}), ContractStatus.SUBMITTED),
    ContractAction.APPROVE: (frozenset({ContractStatus.SUBMITTED}), ContractStatus.APPROVED),
    ContractAction.REJECT: (frozenset({ContractStatus.SUBMITTED}), ContractStatus.REJECTED),
    ContractAction.DEPRECATE: (frozenset({ContractStatus.APPROVED}), ContractStatus.DEPRECATED),
    ContractAction.RETIRE: (frozenset({ContractStatus.DEPRECATED}), ContractStatus.RETIRED),
}
# A document may be edited (and goes back to draft) in these states only.
EDITABLE = frozenset({ContractStatus.DRAFT, ContractStatus.REJECTED})
# Everyone may read these versions; data may still be held (and declared) under BOUND ones.
PUBLIC = frozenset({ContractStatus.APPROVED, ContractStatus.DEPRECATED, ContractStatus.RETIRED})
BOUND = frozenset({ContractStatus.APPROVED, ContractStatus.DEPRECATED})


ACTIVE = frozenset({ExperimentStatus.PENDING, ExperimentStatus.RUNNING})
# state -> the states an experiment may reach it from (final states are reached from ACTIVE)
EXPERIMENT_TRANSITIONS: dict[ExperimentStatus, frozenset[ExperimentStatus]] = {
    ExperimentStatus.PENDING: frozenset(),
    ExperimentStatus.RUNNING: frozenset({ExperimentStatus.PENDING}),
    ExperimentStatus.FINISHED: ACTIVE,
    ExperimentStatus.FAILED: ACTIVE,
    ExperimentStatus.STOPPED: ACTIVE,
}
