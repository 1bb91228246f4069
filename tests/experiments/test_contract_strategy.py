"""k factories per aggregate, enforced where aggregation happens: Flower's strategy loop
(``Strategy.start``) with FedPark's ``ContractStrategy`` around Flower's own strategies, on a
grid whose factories answer in every way a round can go wrong: refusals, FedPark failures,
Flower's exception replies (whose text quotes the data), silence (a dead factory) and
unreachable nodes. The same decisions on Flower's deployment engine are in
``test_k_enforced.py``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Error,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.supercore.task_identity import TaskIdentity
from grids import Answer, Grid4Tests

from fedpark.contracts.errors import ReadFailure, ReadProblem
from fedpark.experiments.contract_strategy import ContractStrategy, TooFewFactoriesError
from fedpark.experiments.protocol import (
    EVALUATE_FIRST,
    EVALUATION_RECORD,
    FAILURE_CODE,
    REFUSAL_CODE,
    FactoryProblem,
    FactoryRefusal,
    FailureKind,
    ProblemKind,
    RoundReport,
)
from fedpark.experiments.reporting import sort_replies
from fedpark.experiments.strategies import build_strategy
from fedpark.experiments.weights import from_safetensors

SENTINEL = "SENTINEL-ROW-7f3q"


def good(org: str, examples: int = 100) -> Answer:
    def answer(message: Message) -> Message:
        metrics = {"num-examples": examples}
        if message.metadata.message_type == MessageType.TRAIN:
            arrays = message.content["arrays"]
            assert isinstance(arrays, ArrayRecord)
            moved = {k: v.numpy() + 0.1 for k, v in arrays.items()}
            content = RecordDict(
                {
                    "arrays": ArrayRecord({k: Array(np.asarray(v)) for k, v in moved.items()}),
                    "metrics": MetricRecord({"train_loss": 0.5, **metrics}),
                    "fedpark": ConfigRecord({"org": org}),
                }
            )
            if message.content["config"].get(EVALUATE_FIRST) is True:  # as the ClientApp does
                content[EVALUATION_RECORD] = ConfigRecord({"accuracy": 0.8, **metrics})
        else:
            content = RecordDict(
                {
                    "metrics": MetricRecord({"accuracy": 0.8, **metrics}),
                    "fedpark": ConfigRecord({"org": org}),
                }
            )
        return Message(content, reply_to=message)

    return answer


def refusing_training(nth: int, otherwise: Answer) -> Answer:
    """A factory that refuses its ``nth`` training message and answers the rest as
    ``otherwise`` does."""
    calls = {"train": 0}

    def answer(message: Message) -> Message | None:
        if message.metadata.message_type == MessageType.TRAIN:
            calls["train"] += 1
            if calls["train"] == nth:
                return PROBLEMS["refused"](message)
        return otherwise(message)

    return answer


def error(code: int, reason: str) -> Answer:
    return lambda message: Message(Error(code, reason), reply_to=message)


def silent(message: Message) -> None:
    return None


def problem(org: str, kind: ProblemKind, **fields: object) -> str:
    return FactoryProblem(org=org, kind=kind, **fields).model_dump_json()  # type: ignore[arg-type]


# Every way a factory does not contribute, as its reply (or its silence).
PROBLEMS: dict[str, Answer] = {
    "refused": error(
        REFUSAL_CODE, problem("bravo", ProblemKind.DATA_BREAKS_CONTRACT, rules={"max": 3})
    ),
    "failed": error(FAILURE_CODE, problem("bravo", ProblemKind.FACTORY_ERROR, error="MemoryError")),
    # Flower's own reply when a ClientApp raises: the exception's text, quoting a row.
    "raised": error(2, f"<class 'ArrowInvalid'>:<'Expected 3 columns, got 4: {SENTINEL},1,2'>"),
    "unreachable": error(5, f"node lost ({SENTINEL})"),
    "dead": silent,
}
STRATEGIES = {
    "fedavg": ("fedavg", {}),
    "fedavg+dp": ("fedavg", {"noise_multiplier": 0.01, "clipping_norm": 10.0}),
    "krum": ("krum", {"num_malicious_nodes": 0}),
    "fedmedian": ("fedmedian", {}),
    "fedtrimmedavg": ("fedtrimmedavg", {"beta": 0.1}),
}


@dataclass
class Reports:
    """A reporter that keeps what the hub would be sent."""

    rounds: list[tuple[RoundReport, bytes]] = field(default_factory=list)

    def round(self, report: RoundReport, checkpoint: bytes) -> None:
        self.rounds.append((report, checkpoint))

    def finished(self, model: bytes, summary: dict[str, object]) -> None:
        raise AssertionError("not used here")

    def failed(self, reason: str) -> None:
        raise AssertionError("not used here")

    def checkpoint(self, number: int) -> bytes:
        raise AssertionError("not used here")


@pytest.fixture(autouse=True)
def _outside_a_run() -> None:
    # Messages normally live inside a run; outside one, Flower needs to be told which.
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1


def _strategy(strategy: str, k: int = 2, rounds_below_k: int = 1) -> ContractStrategy:
    name, params = STRATEGIES[strategy]
    return ContractStrategy(
        build_strategy(name, params, min_factories=k),
        Reports(),
        min_factories=k,
        columns={"temp", "pressure"},
        rounds_below_k=rounds_below_k,
    )


def _run(wrapped: ContractStrategy, grid: Grid4Tests, rounds: int = 1) -> ArrayRecord:
    result = wrapped.start(
        grid=grid,
        initial_arrays=ArrayRecord({"w": Array(np.zeros(4, dtype=np.float32))}),
        num_rounds=rounds,
        timeout=1,
        evaluate_fn=wrapped.end_of_round,
    )
    return result.arrays


def _reports(wrapped: ContractStrategy) -> list[tuple[RoundReport, bytes]]:
    assert isinstance(wrapped.reporter, Reports)
    return wrapped.reporter.rounds


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("trouble", sorted(PROBLEMS))
def test_one_factory_short_of_k_aggregates_nothing_and_ends_the_run(
    strategy: str, trouble: str
) -> None:
    wrapped = _strategy(strategy)
    grid = Grid4Tests({1: good("acme"), 2: PROBLEMS[trouble]})
    with pytest.raises(TooFewFactoriesError) as ended:
        _run(wrapped, grid)
    message = str(ended.value)
    assert message.startswith(
        "round 1 aggregated nothing: 1 factory contributed, the contract requires at least 2"
    )
    assert SENTINEL not in message
    # Recorded as such before the run ended, with the unchanged model as its checkpoint;
    # its evaluation never ran (the model did not change).
    [(report, checkpoint)] = _reports(wrapped)
    assert (report.aggregated, report.contributors, report.min_factories) == (False, ["acme"], 2)
    assert report.train == {} and report.evaluate == {}
    assert from_safetensors(checkpoint)["w"].abs().sum() == 0
    assert [m.metadata.message_type for m in grid.sent] == [MessageType.TRAIN] * 2
    assert [f.org for f in report.train_factories] == ["acme"]
    absent = [r.org for r in report.refused] + [f.org for f in report.failures]
    assert absent == [None if trouble in ("raised", "unreachable", "dead") else "bravo"]
    assert SENTINEL not in report.model_dump_json()


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("trouble", sorted(PROBLEMS))
def test_k_factories_aggregate_and_the_others_are_named(strategy: str, trouble: str) -> None:
    factories = {1: good("acme"), 2: good("bravo"), 3: PROBLEMS[trouble]}
    wrapped = _strategy(strategy)
    final = _run(wrapped, Grid4Tests(factories), rounds=2)
    assert len(final) == 1 and not np.allclose(final["w"].numpy(), 0)
    assert [r.round for r, _ in _reports(wrapped)] == [1, 2]
    for report, checkpoint in _reports(wrapped):
        assert report.aggregated and report.contributors == ["acme", "bravo"]
        assert report.evaluate["accuracy"] == pytest.approx(0.8)
        assert from_safetensors(checkpoint)["w"].abs().sum() > 0
        kinds = {
            "refused": [r.problem.kind for r in report.refused],
            "failed": [f.kind for f in report.failures],
        }
        expected = {
            "refused": {"refused": [ProblemKind.DATA_BREAKS_CONTRACT], "failed": []},
            "failed": {"refused": [], "failed": [FailureKind.FACTORY_ERROR] * 2},
            "raised": {"refused": [], "failed": [FailureKind.APP_RAISED] * 2},
            "unreachable": {"refused": [], "failed": [FailureKind.NODE_UNAVAILABLE] * 2},
            "dead": {"refused": [], "failed": [FailureKind.NO_REPLY] * 2},
        }[trouble]
        if trouble != "refused":  # a failure in training and again in evaluation: listed once
            expected["failed"] = expected["failed"][:1]
        assert kinds == expected, report
        assert SENTINEL not in report.model_dump_json()


def test_a_factory_outside_the_experiment_is_left_out_of_the_report() -> None:
    outsider = error(REFUSAL_CODE, problem("carol", ProblemKind.NOT_INVITED))
    wrapped = _strategy("fedavg")
    _run(wrapped, Grid4Tests({1: good("acme"), 2: good("bravo"), 3: outsider}))
    [(report, _)] = _reports(wrapped)
    assert report.contributors == ["acme", "bravo"]
    assert report.refused == [] and report.failures == []


def test_two_nodes_of_one_factory_count_once() -> None:
    with pytest.raises(TooFewFactoriesError, match="1 factory contributed"):
        _run(_strategy("fedavg"), Grid4Tests({1: good("acme"), 2: good("acme")}))


def test_a_round_below_k_is_skipped_when_the_experiment_allows_it() -> None:
    """``rounds_below_k=2``: the first short round keeps the model and skips evaluation; the
    run goes on, and the next full round aggregates."""
    flaky = refusing_training(1, good("bravo"))
    wrapped = _strategy("fedavg", rounds_below_k=2)
    grid = Grid4Tests({1: good("acme"), 2: flaky})
    final = _run(wrapped, grid, rounds=2)
    first, second = (report for report, _ in _reports(wrapped))
    assert (first.aggregated, second.aggregated) == (False, True)
    assert [r.org for r in first.refused] == ["bravo"] and second.refused == []
    types = [m.metadata.message_type for m in grid.sent]
    assert types == [MessageType.TRAIN] * 4 + [MessageType.EVALUATE] * 2
    assert np.allclose(final["w"].numpy(), 0.1)  # one aggregated round moved the model once


def test_replies_are_read_without_their_text() -> None:
    """What a factory's error reply may carry: a FactoryProblem, nothing else; a column it
    names that is not the contract's is dropped; anything else is known by its code only."""
    instruction = Message(RecordDict(), dst_node_id=7, message_type=MessageType.TRAIN)
    read = ReadFailure(problem=ReadProblem.CSV_ENCODING, column=SENTINEL)
    replies = [
        Message(
            Error(REFUSAL_CODE, problem("acme", ProblemKind.DATA_UNREADABLE, read=read)),
            reply_to=instruction,
        ),
        Message(Error(REFUSAL_CODE, f"fedpark-refused bravo: {SENTINEL}"), reply_to=instruction),
        Message(
            Error(FAILURE_CODE, json.dumps({"org": "carol", "kind": SENTINEL})),
            reply_to=instruction,
        ),
        Message(Error(0, SENTINEL), reply_to=instruction),
    ]
    results, refused, failures = sort_replies(replies, {"temp"})
    assert results == []
    assert [r.reason for r in refused] == [
        "the data file has text that is not valid UTF-8 among text that is (a damaged file, "
        "or two encodings mixed); if it is not UTF-8, name its encoding with --encoding"
    ]
    assert [f.kind for f in failures] == [
        FailureKind.INVALID_REPLY,
        FailureKind.INVALID_REPLY,
        FailureKind.UNKNOWN,
    ]
    everything = json.dumps([x.model_dump(mode="json") for x in (*refused, *failures)])
    assert SENTINEL not in everything


def test_a_reason_can_only_be_the_description_of_its_fields() -> None:
    """The hub validates reports with the same model: free text is refused."""
    refusal = FactoryRefusal.of(
        3, FactoryProblem(org="acme", kind=ProblemKind.DATA_BREAKS_CONTRACT, rules={"min": 2})
    )
    assert refusal.reason == "data breaks the contract: min=2"
    forged = refusal.model_dump() | {"reason": f"data breaks the contract: {SENTINEL}"}
    with pytest.raises(ValueError, match="reason must be the description"):
        FactoryRefusal.model_validate(forged)


def weighing(org: str, evaluates_first: bool = True) -> Answer:
    """A factory whose accuracy is the sum of the weights it evaluated: a report's evaluation
    shows which model was evaluated."""

    def answer(message: Message) -> Message:
        reply = good(org)(message)
        assert reply is not None
        weights = float(message.content["arrays"]["w"].numpy().sum())  # type: ignore[index,union-attr]
        if EVALUATION_RECORD in reply.content:
            if evaluates_first:
                reply.content[EVALUATION_RECORD] = ConfigRecord(
                    {"accuracy": weights, "num-examples": 100}
                )
            else:
                del reply.content[EVALUATION_RECORD]
        if message.metadata.message_type == MessageType.EVALUATE:
            reply.content["metrics"] = MetricRecord({"accuracy": weights, "num-examples": 100})
        return reply

    return answer


def test_each_round_is_evaluated_with_the_next_rounds_training() -> None:
    """One message per factory per round: round r's model is evaluated when round r+1's
    training brings it, and only the last round sends evaluation messages; every report
    still holds the evaluation of its own round's model."""
    wrapped = _strategy("fedavg")
    grid = Grid4Tests({1: weighing("acme"), 2: weighing("bravo")})
    _run(wrapped, grid, rounds=3)
    sent = [
        (m.metadata.message_type, m.content["config"].get(EVALUATE_FIRST) is True)  # type: ignore[union-attr]
        for m in grid.sent
    ]
    train, evaluate = MessageType.TRAIN, MessageType.EVALUATE
    assert sent == [(train, False)] * 2 + [(train, True)] * 4 + [(evaluate, False)] * 2
    reports = _reports(wrapped)
    assert [r.round for r, _ in reports] == [1, 2, 3]
    for report, checkpoint in reports:
        evaluated = float(from_safetensors(checkpoint)["w"].sum())
        assert report.evaluate["accuracy"] == pytest.approx(evaluated), report.round
        assert sorted(r.org for r in report.evaluate_factories) == ["acme", "bravo"]
        assert report.failures == [] and report.refused == []


def test_an_evaluation_from_fewer_than_k_factories_is_not_published() -> None:
    wrapped = _strategy("fedavg")
    _run(wrapped, Grid4Tests({1: weighing("acme"), 2: weighing("bravo", False)}), rounds=2)
    (first, _), (last, _) = _reports(wrapped)
    assert first.aggregated and first.evaluate == {}
    assert [r.org for r in first.evaluate_factories] == ["acme"]
    assert first.failures == []  # a training reply without an evaluation is no failure
    assert last.evaluate != {}  # the last round evaluates with messages of its own


def test_an_evaluation_that_is_not_metrics_is_left_out() -> None:
    def boasting(message: Message) -> Message:
        reply = weighing("carol")(message)
        if EVALUATION_RECORD in reply.content:
            reply.content[EVALUATION_RECORD] = ConfigRecord({"accuracy": "best", "x": b"1"})
        return reply

    wrapped = _strategy("fedavg")
    _run(wrapped, Grid4Tests({1: weighing("acme"), 2: weighing("bravo"), 3: boasting}), 2)
    first = _reports(wrapped)[0][0]
    assert sorted(r.org for r in first.evaluate_factories) == ["acme", "bravo"]
    assert first.contributors == ["acme", "bravo", "carol"]


def test_a_short_round_records_the_round_before_it_first() -> None:
    """Round 2 falls below k (and the experiment allows one such round): round 1 is recorded
    with the evaluation round 2's replies carried, then round 2, then round 3."""
    flaky = refusing_training(2, weighing("bravo"))
    wrapped = _strategy("fedavg", k=2, rounds_below_k=2)
    _run(wrapped, Grid4Tests({1: weighing("acme"), 2: flaky, 3: weighing("carol")}), 3)
    reports = [report for report, _ in _reports(wrapped)]
    assert [(r.round, r.aggregated) for r in reports] == [(1, True), (2, True), (3, True)]
    assert sorted(r.org for r in reports[0].evaluate_factories) == ["acme", "carol"]
    assert [r.org for r in reports[1].refused] == ["bravo"]
