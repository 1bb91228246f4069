"""What FedPark's Flower apps and the hub tell each other about a round, typed once.

This module imports neither torch nor Flower: the ClientApp (at the factory), the ServerApp
and the hub all import it. Nothing here has room for a factory's data: a factory that
cannot or will not train says so with a :class:`FactoryProblem` (kinds, rule names, counts,
a line number, a contract column), and every sentence a person reads is *built* from those
fields by :meth:`FactoryProblem.describe`, never copied from an exception. Models that carry
such a sentence (``reason``) check that it is exactly the one their fields give.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from fedpark.contracts.errors import ReadFailure
from fedpark.contracts.names import Slug
from fedpark.experiments.protocol.base import MAX_FACTORIES, Wire

# Error codes of a ClientApp's error replies (Flower's own codes are below 100).
REFUSAL_CODE = 4242  # the factory will not train on this run: see the FactoryProblem
FAILURE_CODE = 4243  # the factory's ClientApp failed: only the error's type name travels

# One message per factory per round: a training message may ask the factory to evaluate the
# model it carries (the last round's aggregate) before training on it, and the reply carries
# that evaluation beside the update. A ConfigRecord, not a second MetricRecord: Flower's
# strategies expect exactly one MetricRecord in a training reply.
EVALUATE_FIRST = "fedpark-evaluate-first"  # key of the training config (bool)
EVALUATION_RECORD = "fedpark-evaluation"  # the reply's ConfigRecord: metrics and num-examples
# After the last round each factory also trains a model on its own rows alone, with the
# budget it spent in the federation, and reports that model's metrics beside the federated
# one's under ``ALONE_PREFIX`` + name: what joining the park gained it (only metrics leave).
LOCAL_BASELINE = "fedpark-local-baseline"  # key of the last evaluation's config (bool)
ALONE_PREFIX = "alone_"
# SCAFFOLD's control variates travel beside the model as ArrayRecords of their own: the
# server's ``c`` in each training message, the factory's new ``c_i`` in its reply (the
# strategy removes it before Flower's aggregation, which expects one ArrayRecord).
SCAFFOLD_CONTROL = "fedpark-scaffold-control"
SCAFFOLD_CLIENT = "fedpark-scaffold-client"

OrgId = Slug  # an organization's id
# Rule names as the validator counts them: ``min``, ``not_null``, ``schema.missing``, ...
RuleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,31}(\.[a-z_]{1,16})?$")]
ErrorName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,79}$")]
MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class ProblemKind(StrEnum):
    """Why a factory did not contribute to a round."""

    CONTRACT_NOT_VERIFIED = "contract-not-verified"
    CONTRACT_MISMATCH = "contract-mismatch"
    CONTRACT_UNAVAILABLE = "contract-unavailable"
    DATA_UNREADABLE = "data-unreadable"
    DATA_BREAKS_CONTRACT = "data-breaks-contract"
    NOT_INVITED = "not-invited"  # not a participant of this experiment: it takes no part
    FACTORY_ERROR = "factory-error"  # not a refusal: the ClientApp itself failed


class FactoryProblem(Wire):
    """A factory's answer when it does not train: sent as its error reply's reason (JSON)."""

    org: OrgId
    kind: ProblemKind
    rules: dict[RuleName, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, max_length=64, description="Violations per rule"
    )
    read: ReadFailure | None = Field(default=None, description="Why the data was unreadable")
    status: int | None = Field(
        default=None, ge=100, le=599, description="The hub's answer to the contract download"
    )
    error: ErrorName | None = Field(
        default=None, description="The type of the ClientApp's exception (never its text)"
    )

    @property
    def refused(self) -> bool:
        """A refusal (the contract's rules said no), not a failure."""
        return self.kind is not ProblemKind.FACTORY_ERROR

    def describe(self) -> str:
        """What happened, in one sentence of FedPark's words."""
        kind = self.kind
        if kind is ProblemKind.DATA_BREAKS_CONTRACT:
            counts = ", ".join(f"{rule}={n}" for rule, n in sorted(self.rules.items()))
            return f"data breaks the contract: {counts or 'rules failed'}"
        if kind is ProblemKind.DATA_UNREADABLE:
            detail = self.read.describe() if self.read else "cannot be read"
            return f"the data file {detail}"
        if kind is ProblemKind.CONTRACT_UNAVAILABLE:
            if self.status is None:
                return "the contract could not be fetched: the hub was unreachable"
            return f"the contract could not be fetched: the hub answered {self.status}"
        if kind is ProblemKind.CONTRACT_NOT_VERIFIED:
            return "the contract does not carry a valid signature of the hub's pinned key"
        if kind is ProblemKind.CONTRACT_MISMATCH:
            return "the run asks for a contract other than the approved one this factory holds"
        if kind is ProblemKind.NOT_INVITED:
            return "the factory is not a participant of this experiment"
        return f"the factory's client failed ({self.error or 'an error'})"

    def without_foreign_column(self, columns: set[str]) -> FactoryProblem:
        """The same problem, naming a column only if it is one of ``columns`` (the contract's):
        a receiver's check that no name read from a file travels on."""
        if self.read is None or self.read.column is None or self.read.column in columns:
            return self
        return self.model_copy(update={"read": self.read.model_copy(update={"column": None})})


class FailureKind(StrEnum):
    """How a factory's reply failed, by Flower's error code or FedPark's own."""

    FACTORY_ERROR = "factory-error"
    NO_REPLY = "no-reply"  # sampled, but no reply within the round's timeout
    NODE_UNAVAILABLE = "node-unavailable"
    APP_CRASHED = "app-crashed"
    APP_NOT_LOADED = "app-not-loaded"
    APP_RAISED = "app-raised"
    MESSAGE_UNAVAILABLE = "message-unavailable"
    INVALID_REPLY = "invalid-reply"  # a reply FedPark cannot read (not its own format)
    UNKNOWN = "unknown"


# Flower's ``flwr.common.constant.ErrorCode`` values (not imported: this module is Flower-free).
FLOWER_ERROR_KINDS: dict[int, FailureKind] = {
    0: FailureKind.UNKNOWN,
    1: FailureKind.APP_NOT_LOADED,
    2: FailureKind.APP_RAISED,
    3: FailureKind.MESSAGE_UNAVAILABLE,
    4: FailureKind.NO_REPLY,
    5: FailureKind.NODE_UNAVAILABLE,
    6: FailureKind.APP_RAISED,  # a mod's failed precondition
    7: FailureKind.APP_NOT_LOADED,  # an invalid FAB
    8: FailureKind.APP_CRASHED,
}

_FAILURE_WORDS = {
    FailureKind.NO_REPLY: "did not reply within the round's timeout",
    FailureKind.NODE_UNAVAILABLE: "was unreachable (its SuperNode stopped or lost the link)",
    FailureKind.APP_CRASHED: "its client crashed",
    FailureKind.APP_NOT_LOADED: "could not load FedPark's client",
    FailureKind.APP_RAISED: "its client failed",
    FailureKind.MESSAGE_UNAVAILABLE: "never received the round's message",
    FailureKind.INVALID_REPLY: "sent a reply FedPark cannot read",
    FailureKind.UNKNOWN: "failed",
}


def _check_reason(reason: str, expected: str) -> None:
    if reason != expected:
        raise ValueError("reason must be the description of the fields, in FedPark's words")


class FactoryRefusal(Wire):
    """A factory that refused a round; ``reason`` is ``problem.describe()``."""

    org: OrgId
    node_id: int
    problem: FactoryProblem
    reason: str = Field(max_length=2000)

    @classmethod
    def of(cls, node_id: int, problem: FactoryProblem) -> FactoryRefusal:
        return cls(org=problem.org, node_id=node_id, problem=problem, reason=problem.describe())

    @model_validator(mode="after")
    def _reason_is_derived(self) -> Self:
        _check_reason(self.reason, self.problem.describe())
        return self


class NodeFailure(Wire):
    """A reply that failed, or a reply that never came; ``reason`` is derived as above."""

    node_id: int
    kind: FailureKind
    org: OrgId | None = None
    problem: FactoryProblem | None = None
    reason: str = Field(max_length=2000)

    @classmethod
    def of(
        cls, node_id: int, kind: FailureKind, problem: FactoryProblem | None = None
    ) -> NodeFailure:
        org = problem.org if problem else None
        return cls(
            node_id=node_id, kind=kind, org=org, problem=problem, reason=_failure(kind, problem)
        )

    @model_validator(mode="after")
    def _reason_is_derived(self) -> Self:
        _check_reason(self.reason, _failure(self.kind, self.problem))
        return self


def _failure(kind: FailureKind, problem: FactoryProblem | None) -> str:
    if problem is not None:
        return problem.describe()
    return _FAILURE_WORDS[kind]


class FactoryResult(Wire):
    """One factory's successful reply: how many rows it used, and its metrics."""

    org: OrgId
    node_id: int
    examples: int = Field(ge=0)
    metrics: dict[MetricName, float] = Field(default_factory=dict, max_length=64)


class RoundReport(Wire):
    """What the ServerApp reports after a round (no data, only metrics, counts and kinds).

    ``contributors`` are the factories whose update entered the round's aggregate; a round
    with fewer than the contract's k of them aggregates nothing (``aggregated`` is false, the
    global model stays as it was) and ``below_k`` says so.
    """

    round: int = Field(ge=1)
    aggregated: bool = True
    contributors: list[OrgId] = Field(default_factory=list, max_length=MAX_FACTORIES)
    min_factories: int | None = Field(default=None, ge=1, description="The round's k")
    train: dict[MetricName, float] = Field(default_factory=dict, max_length=64)
    evaluate: dict[MetricName, float] = Field(default_factory=dict, max_length=64)
    train_factories: list[FactoryResult] = Field(default_factory=list, max_length=MAX_FACTORIES)
    evaluate_factories: list[FactoryResult] = Field(default_factory=list, max_length=MAX_FACTORIES)
    refused: list[FactoryRefusal] = Field(default_factory=list, max_length=MAX_FACTORIES)
    failures: list[NodeFailure] = Field(default_factory=list, max_length=MAX_FACTORIES)

    @property
    def below_k(self) -> str | None:
        """Why the round aggregated nothing, or None."""
        if self.aggregated:
            return None
        k = self.min_factories or 0
        n = len(self.contributors)
        return (
            f"round {self.round} aggregated nothing: {n} "
            f"factor{'y' if n == 1 else 'ies'} contributed, the contract requires at least {k}"
        )
