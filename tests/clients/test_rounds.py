"""The per-factory table of ``experiment status`` and the line per round of ``--watch`` in a
log: what each factory did, in FedPark's words."""

from __future__ import annotations

from rich.console import Console

from fedpark.clients.cli.rounds import factory_table, round_line
from fedpark.experiments.protocol import (
    FactoryProblem,
    FactoryRefusal,
    FactoryResult,
    ProblemKind,
    RoundReport,
)


def _rounds() -> list[RoundReport]:
    refusal = FactoryRefusal.of(
        2, FactoryProblem(org="bravo", kind=ProblemKind.DATA_BREAKS_CONTRACT, rules={"min": 3})
    )
    return [
        RoundReport(
            round=1,
            contributors=["acme", "bravo"],
            train_factories=[
                FactoryResult(org="acme", node_id=1, examples=100),
                FactoryResult(org="bravo", node_id=2, examples=80),
            ],
            evaluate={"macro_f1": 0.7},
            evaluate_factories=[
                FactoryResult(org="acme", node_id=1, examples=25, metrics={"macro_f1": 0.75}),
                FactoryResult(org="bravo", node_id=2, examples=20, metrics={"macro_f1": 0.65}),
            ],
        ),
        RoundReport(
            round=2,
            aggregated=False,
            contributors=["acme"],
            min_factories=2,
            train_factories=[FactoryResult(org="acme", node_id=1, examples=100)],
            refused=[refusal],
        ),
    ]


def test_each_factory_has_its_rounds_rows_metrics_and_last_problem() -> None:
    console = Console(width=200, record=True)
    console.print(factory_table(_rounds()))
    rows = {
        cells[0]: cells[1:]
        for line in console.export_text().splitlines()
        if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 6
    }
    assert rows["acme"] == ["1", "100", "25", "0.7500", "-"]
    assert rows["bravo"] == [
        "1",
        "80",
        "20",
        "0.6500",
        "round 2: refused, data breaks the contract: min=3",
    ]


def test_one_plain_line_per_round() -> None:
    first, second = (round_line(r, 5) for r in _rounds())
    assert first == "round 1/5: macro_f1 0.7000, factories 2"
    assert second == "round 2/5: factories 1 (1 refused or failed), not aggregated: below k"
