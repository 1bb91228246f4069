"""The hub's Prometheus metrics, served at ``/metrics`` in Prometheus' text format.

Every hub (every :class:`~fedpark.hub.runtime.HubRuntime`) has a registry of its own, never
the library's global default one: a process may hold several hubs (the tests build many), and
one hub's figures must not show in another's scrape.

Labels are bounded by design: route *templates* (never a raw path, which carries ids and is
whatever a client sends), HTTP methods and statuses, enum values (experiment states, refusal
and failure kinds, audit outcomes), error class names, and contract ids (registered in the
catalog by stewards' review, not by whoever calls). No label ever holds an experiment id, a
token, a key or an exception's text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fedpark.experiments.protocol import RoundReport
from fedpark.experiments.protocol.resources.experiments import ExperimentStatus
from fedpark.hub.errors import CatalogError, FedparkError, FlowerUnavailableError, StorageError

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a path no route matched (a 404)
# Seconds: most answers take milliseconds; model transfers and launches take seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Factories per round: a handful in most experiments, up to a park's 350 and beyond.
FACTORY_BUCKETS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 350, 500, 1000)

ErrorHook = Callable[[FedparkError], None]


class ExperimentsByStatus(Collector):
    """``fedpark_experiments{status}``, counted in the catalog at scrape time.

    Computed, not kept: the catalog is the truth, shared by hub replicas and kept across
    restarts, while a gauge kept in memory would start at zero after each restart and would
    need every transition (launch, reports, the supervisor, stops) to remember it.
    """

    def __init__(self, count: Callable[[], dict[str, int]]) -> None:
        self._count = count

    def describe(self) -> Iterator[Metric]:
        yield self._family()  # registration asks for names: no catalog query then

    def collect(self) -> Iterator[Metric]:
        try:
            counts = self._count()
        except FedparkError:
            return  # the catalog is down (its hook counted the error): the rest still scrapes
        family = self._family()
        for status in ExperimentStatus:
            family.add_metric([status.value], counts.get(status.value, 0))
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "fedpark_experiments", "Experiments in the catalog, by status", labels=["status"]
        )


class HubMetrics:
    """The hub's metrics in a registry of its own; services call the ``on_*`` methods."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        self.requests = counter(
            "fedpark_http_requests",
            "HTTP requests answered, by method, route template and status",
            "method",
            "route",
            "status",
        )
        self.latency = Histogram(
            "fedpark_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.rounds = counter(
            "fedpark_rounds_completed",
            "Rounds recorded from ServerApps' reports (a retried report counts once); "
            "aggregated=false: fewer than k factories contributed",
            "aggregated",
        )
        self.round_factories = Histogram(
            "fedpark_round_factories",
            "Factories whose updates a recorded round aggregated",
            buckets=FACTORY_BUCKETS,
            registry=registry,
        )
        self.refusals = counter(
            "fedpark_round_refusals",
            "Factories that refused a round under a contract, by contract and kind",
            "contract",
            "kind",
        )
        self.failures = counter(
            "fedpark_round_failures",
            "Factories' replies that failed or never came in a round, by kind",
            "kind",
        )
        self.validation_failures = counter(
            "fedpark_validation_failures",
            "Dataset declarations refused by the hub, or recorded as not compliant",
            "contract",
            "outcome",
        )
        self.errors = counter(
            "fedpark_component_errors",
            "Failures of the object store, the catalog and the Flower SuperLink",
            "component",
            "error",
        )
        self.audit_records = counter(
            "fedpark_audit_records_written", "Audit records committed, by outcome", "outcome"
        )

    def watch_experiments(self, count: Callable[[], dict[str, int]]) -> None:
        """Count experiments by status in the catalog at each scrape (``count``)."""
        self.registry.register(ExperimentsByStatus(count))

    def render(self) -> bytes:
        """Every metric in Prometheus' text format (queries the catalog: call off the loop)."""
        return generate_latest(self.registry)

    def on_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def on_round(self, contract_id: str, report: RoundReport) -> None:
        self.rounds.labels("true" if report.aggregated else "false").inc()
        self.round_factories.observe(len(set(report.contributors)))
        for refusal in report.refused:
            self.refusals.labels(contract_id, refusal.problem.kind.value).inc()
        for failure in report.failures:
            self.failures.labels(failure.kind.value).inc()

    def on_declaration_refused(self, contract_id: str) -> None:
        self.validation_failures.labels(contract_id, "refused").inc()

    def on_declaration(self, contract_id: str, compliant: bool) -> None:
        if not compliant:
            self.validation_failures.labels(contract_id, "non_compliant").inc()

    def on_error(self, exc: FedparkError) -> None:
        """A component failed (the error hook of the object store, catalog and Flower)."""
        self.errors.labels(_component(exc), type(exc).__name__).inc()

    def on_audit_record(self, outcome: str) -> None:
        self.audit_records.labels(outcome).inc()


def _component(exc: FedparkError) -> str:
    if isinstance(exc, StorageError):
        return "storage"
    if isinstance(exc, CatalogError):
        return "catalog"
    if isinstance(exc, FlowerUnavailableError):
        return "flower"
    return "other"
