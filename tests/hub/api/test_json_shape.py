"""The body check that runs before any JSON is parsed: what a body would cost once parsed is
read off its bytes (objects, arrays, values, depth), so an abusive body is refused for the
price of scanning it, and the largest real documents FedPark takes still pass."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from harness import Park
from samples import contract_data

from fedpark.contracts import Contract
from fedpark.contracts.checks import MAX_CATEGORIES
from fedpark.contracts.model import MAX_COLUMNS, MAX_TOTAL_ALLOWED_VALUES
from fedpark.experiments.protocol import FactoryResult, RoundReport
from fedpark.experiments.protocol.reports import MAX_FACTORIES
from fedpark.hub.api.limits import json_shape_problem

# Each about 7-8 MiB, under the byte limit; parsed and validated, each costs far more.
# Built when a test asks (not at collection, where every run would pay for them).
ABUSIVE: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty objects": (lambda: b"[" + b",".join([b"{}"] * 2_600_000) + b"]", "objects and arrays"),
    "floats": (lambda: b"[" + b",".join([b"0.5"] * 2_000_000) + b"]", "JSON values"),
    "short strings": (lambda: b'{"a":[' + b",".join([b'"x"'] * 1_900_000) + b"]}", "JSON values"),
    "members": (lambda: b"{" + b",".join([b'"a":1'] * 1_200_000) + b"}", "JSON values"),
    "depth": (lambda: b"[" * 33 + b"]" * 33, "nests more than 32 levels"),
}


@pytest.mark.parametrize("shape", sorted(ABUSIVE))
def test_an_abusive_body_is_refused_for_the_price_of_scanning_it(shape: str) -> None:
    make, reason = ABUSIVE[shape]
    body = make()
    tracemalloc.start()
    try:
        problem = json_shape_problem(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert problem is not None and reason in problem
    # the check's own cost, whatever the shape: a few times the body, never its parse
    assert peak < 50 * 2**20, f"{peak / 2**20:.0f} MiB to check {len(body) / 2**20:.1f} MiB"


def _largest_round_report() -> bytes:
    metrics = {f"metric_{i}": 0.5 for i in range(64)}
    factories = [
        FactoryResult(org=f"plant-{i}", node_id=i + 1, examples=4000, metrics=metrics)
        for i in range(MAX_FACTORIES)
    ]
    report = RoundReport(
        round=1,
        contributors=[f.org for f in factories],
        train_factories=factories,
        evaluate_factories=factories,
    )
    return report.model_dump_json().encode()


def _wide_contract() -> bytes:
    """The most allowed values a contract may list (20 code lists of 10 000), and wide."""
    columns: list[dict[str, Any]] = [
        {"name": f"sensor_{i}", "type": "float64", "rules": {"min": 0, "max": 1}}
        for i in range(1000)
    ]
    codes = [str(i) for i in range(10_000)]
    columns += [
        {"name": f"code_{i}", "type": "string", "rules": {"allowed_values": codes}}
        for i in range(MAX_TOTAL_ALLOWED_VALUES // len(codes))
    ]
    data = contract_data() | {"columns": columns}
    Contract.model_validate(data)  # a valid contract, at the limit
    return json.dumps(data).encode()


def _widest_profile() -> bytes:
    """A declaration's profile of the widest contract, every column with its categories."""
    categories = {f"category-{i}": 10 for i in range(MAX_CATEGORIES)}
    columns = [
        {"name": f"c{i}", "type": "string", "null_fraction": 0.0, "categories": categories}
        for i in range(MAX_COLUMNS)
    ]
    return json.dumps({"rows": 10**6, "columns": columns}).encode()


@pytest.mark.parametrize("document", [_largest_round_report, _wide_contract, _widest_profile])
def test_the_largest_real_documents_pass(document: Any) -> None:
    assert json_shape_problem(document()) is None


@pytest.fixture(scope="module")
def park(rules_park: Park) -> Park:
    """The hub's rules, in process (see ``rules_park``)."""
    return rules_park


def test_the_hub_answers_422_saying_why(park: Park) -> None:
    make, reason = ABUSIVE["floats"]
    body = make()
    with park.client("acme-factory") as factory:
        answer = factory.post(
            "/contracts", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 422
    assert reason in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        # brackets, commas and escaped quotes inside text are text, not structure
        (json.dumps({"t": "[{" * 100 + '\\"' + "," * 600_000}).encode(), None),
        # a string ending in an escaped backslash is closed by the quote after it
        (b'{"a": "x\\\\", "b": ' + b"[" * 33 + b"]" * 33 + b"}", "nests more than 32"),
        (b'{"a": "x\\"", "b": ' + b"[" * 33 + b"]" * 33 + b"}", "nests more than 32"),
        (b'{"a": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', None),
        (b'{"smile": "\\ud83d\\ude00"}', None),
        (b'{"smile": "\\ud83d"}', "lone UTF-16 surrogates"),
        (b'{"smile": "\\ude00 x"}', "lone UTF-16 surrogates"),
        (b'{"smile": "\\\\ud83d"}', None),  # an escaped backslash, then text
    ],
)
def test_text_is_told_from_structure(body: bytes, problem: str | None) -> None:
    found = json_shape_problem(body)
    assert (found is None) if problem is None else (found is not None and problem in found)
