"""``/metrics``: Prometheus' text format, park admins only, bounded labels, every event counted."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from harness import Park, contract_in_state, free_port
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from samples import sensor_table

from fedpark.contracts import Contract, validate_table
from fedpark.experiments.protocol import RoundReport
from fedpark.experiments.protocol.reports import (
    FactoryProblem,
    FactoryRefusal,
    FailureKind,
    NodeFailure,
    ProblemKind,
)
from fedpark.hub.errors import (
    CatalogError,
    ConfigurationError,
    FlowerUnavailableError,
    StorageUnavailableError,
)
from fedpark.hub.flower.control import FlowerControl
from fedpark.hub.metrics import HubMetrics
from fedpark.hub.server import loopback_metrics
from fedpark.hub.storage import Catalog, ObjectStore
from fedpark.hub.storage.objects import RetryPolicy

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(park: Park) -> Samples:
    """Every sample of the hub's ``/metrics``, read by Prometheus' own parser."""
    with park.client("operator") as admin:
        got = admin.get(f"{park.hub.url}/metrics")
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(got.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_for_the_park_operators_admins_only(rules_park: Park) -> None:
    with rules_park.hub.client() as anonymous:
        refused = anonymous.get(f"{rules_park.hub.url}/metrics")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    for who in ("acme-admin", "acme-researcher", "acme-steward", "acme-factory"):
        with rules_park.client(who) as member:
            assert member.get(f"{rules_park.hub.url}/metrics").status_code == 403, who
    samples = scrape(rules_park)
    assert value(samples, "fedpark_http_requests_total", method="GET", route="/metrics",
                 status="403") >= 4  # fmt: skip


def test_requests_are_labelled_by_route_template_never_by_raw_path(rules_park: Park) -> None:
    secret_id = f"exp-{uuid.uuid4().hex[:12]}"
    before = scrape(rules_park)
    with rules_park.client("acme-researcher") as researcher:
        assert researcher.get(f"/experiments/{secret_id}").status_code == 404
        assert researcher.get(f"/no-such/{secret_id}").status_code == 404
        assert researcher.request("BREW", "/experiments").status_code == 405
    after = scrape(rules_park)
    route = "/api/v1/experiments/{experiment_id}"
    key = {"method": "GET", "route": route, "status": "404"}
    assert value(after, "fedpark_http_requests_total", **key) == (
        value(before, "fedpark_http_requests_total", **key) + 1
    )
    timed = {"method": "GET", "route": route}
    assert value(after, "fedpark_http_request_duration_seconds_count", **timed) >= 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, "fedpark_http_requests_total", **unmatched) >= 1
    odd = {"method": "other", "route": "/api/v1/experiments", "status": "405"}
    assert value(after, "fedpark_http_requests_total", **odd) >= 1  # not "BREW"
    labels = {v for _, pairs in after for _, v in pairs}
    assert not any(secret_id in v or "BREW" in v for v in labels)
    routes = {v for _, pairs in after for k, v in pairs if k == "route"}
    assert all(r in ("unmatched", "/metrics", "/health") or r.startswith(("/api/v1", "/console"))
               for r in routes), routes  # fmt: skip


def test_every_family_is_there_and_experiments_are_counted_by_status(rules_park: Park) -> None:
    samples = scrape(rules_park)
    names = {name for name, _ in samples}
    assert {
        "fedpark_http_requests_total",
        "fedpark_http_request_duration_seconds_bucket",
        "fedpark_audit_records_written_total",
    } <= names
    statuses = {dict(labels)["status"] for name, labels in samples if name == "fedpark_experiments"}
    assert statuses == {"pending", "running", "finished", "failed", "stopped"}
    assert not [name for name in REGISTRY._names_to_collectors if name.startswith("fedpark")]


def test_audit_records_are_counted_when_written(rules_park: Park) -> None:
    before = scrape(rules_park)
    with rules_park.client("operator") as admin:
        org = f"o{uuid.uuid4().hex[:8]}"
        body = {"id": org, "name": "Org", "kind": "factory"}
        assert admin.post("/organizations", json=body).is_success
    with rules_park.client("acme-researcher") as researcher:
        assert researcher.post("/organizations", json={"id": "x", "name": "X"}).status_code == 403
    after = scrape(rules_park)
    for outcome in ("success", "denied"):
        name = "fedpark_audit_records_written_total"
        grew = value(after, name, outcome=outcome) - value(before, name, outcome=outcome)
        assert grew >= 1, outcome  # other tests may write meanwhile: never fewer


def _declaration(data: dict[str, Any], table: pa.Table) -> dict[str, Any]:
    result = validate_table(Contract.model_validate(data), table)
    return {
        "name": f"d-{uuid.uuid4().hex[:6]}",
        "report": result.report.model_dump(mode="json"),
        "profile": result.profile.model_dump(mode="json"),
    }


def test_declarations_refused_and_not_compliant_are_counted(rules_park: Park) -> None:
    data = contract_in_state(rules_park, "approved")
    path = f"/contracts/{data['id']}/versions/{data['version']}/datasets"
    good = sensor_table(rows=200)
    hot = good.set_column(2, "temp", pa.array([500.0] * 200, pa.float32()))  # max is 120
    refused = _declaration(data, good)
    refused["profile"]["rows"] = 49
    with rules_park.client("acme-factory") as factory:
        assert factory.post(path, json=_declaration(data, good)).status_code == 201
        assert factory.post(path, json=_declaration(data, hot)).status_code == 201
        assert factory.post(path, json=refused).status_code == 422
    samples = scrape(rules_park)
    name = "fedpark_validation_failures_total"
    assert value(samples, name, contract=data["id"], outcome="non_compliant") == 1
    assert value(samples, name, contract=data["id"], outcome="refused") == 1


def test_a_round_counts_its_factories_refusals_and_failures() -> None:
    metrics = HubMetrics()
    problem = FactoryProblem(org="bravo", kind=ProblemKind.DATA_BREAKS_CONTRACT, rules={"max": 3})
    metrics.on_round(
        "press",
        RoundReport(
            round=1,
            contributors=["acme", "carmel"],
            refused=[FactoryRefusal.of(7, problem)],
            failures=[NodeFailure.of(9, FailureKind.NO_REPLY)],
        ),
    )
    metrics.on_round("press", RoundReport(round=2, aggregated=False, contributors=["acme"]))
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }
    assert value(samples, "fedpark_rounds_completed_total", aggregated="true") == 1
    assert value(samples, "fedpark_rounds_completed_total", aggregated="false") == 1
    assert value(samples, "fedpark_round_factories_count") == 2
    assert value(samples, "fedpark_round_factories_sum") == 3
    refusal = {"contract": "press", "kind": "data-breaks-contract"}
    assert value(samples, "fedpark_round_refusals_total", **refusal) == 1
    assert value(samples, "fedpark_round_failures_total", kind="no-reply") == 1
    assert HubMetrics().registry is not metrics.registry  # each hub its own


def test_storage_catalog_and_flower_errors_are_counted_by_component(tmp_path: Path) -> None:
    metrics = HubMetrics()
    store = ObjectStore("127.0.0.1:1", "key", "secret", retry=RetryPolicy(attempts=1))
    catalog = Catalog(f"sqlite:///{tmp_path / 'missing' / 'catalog.db'}")
    flower = FlowerControl("127.0.0.1:1")
    store.on_error = catalog.on_error = flower.on_error = metrics.on_error
    with pytest.raises(StorageUnavailableError):
        store.check()
    with pytest.raises(CatalogError):
        catalog.check()
    with pytest.raises(FlowerUnavailableError):
        flower.check(quiet=True)
    text = metrics.render().decode()
    for component, error in [
        ("storage", "StorageUnavailableError"),
        ("catalog", "CatalogError"),
        ("flower", "FlowerUnavailableError"),
    ]:
        line = f'fedpark_component_errors_total{{component="{component}",error="{error}"}} 1.0'
        assert line in text
    assert "secret" not in text and "127.0.0.1" not in text


def test_a_scrape_with_the_catalog_down_still_answers(tmp_path: Path) -> None:
    metrics = HubMetrics()
    catalog = Catalog(f"sqlite:///{tmp_path / 'missing' / 'catalog.db'}")

    def count() -> dict[str, int]:
        catalog.check()
        return {}

    metrics.watch_experiments(count)
    text = metrics.render().decode()
    assert "fedpark_experiments{" not in text and "fedpark_http_requests" in text


def test_the_loopback_port_serves_without_a_token_and_refuses_a_busy_port() -> None:
    metrics = HubMetrics()
    metrics.on_request("GET", "/health", 200, 0.01)
    port = free_port()
    with loopback_metrics(metrics, port):
        got = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert got.status_code == 200 and 'route="/health"' in got.text
        busy = loopback_metrics(metrics, port)
        with pytest.raises(ConfigurationError, match="FEDPARK_METRICS_PORT"):
            busy.__enter__()
    with pytest.raises(httpx.TransportError):  # stopped with the hub
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
