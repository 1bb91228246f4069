"""The hub's long-lived parts, built from settings: storage and the services over it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fedpark.hub.errors import ConfigurationError
from fedpark.hub.flower.control import FlowerControl
from fedpark.hub.metrics import HubMetrics
from fedpark.hub.services.audit import AuditService
from fedpark.hub.services.bootstrap import bootstrap_admin, load_or_create_key
from fedpark.hub.services.contracts import ContractService
from fedpark.hub.services.datasets import DatasetService
from fedpark.hub.services.experiments import ExperimentService
from fedpark.hub.services.federation import FederationService
from fedpark.hub.services.identity import IdentityService
from fedpark.hub.services.keys import HubKey
from fedpark.hub.services.runs import RunReportService
from fedpark.hub.services.supervisor import RunSupervisor
from fedpark.hub.services.throttle import Throttle
from fedpark.hub.settings import Settings
from fedpark.hub.storage import Catalog, ObjectStore, Storage

log = logging.getLogger(__name__)


def build_storage(settings: Settings) -> Storage:
    """The catalog and the object store the settings name; opens no connection yet."""
    if not (settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key):
        raise ConfigurationError(
            "no S3 storage configured: set FEDPARK_S3_ENDPOINT, FEDPARK_S3_ACCESS_KEY and "
            "FEDPARK_S3_SECRET_KEY, or run `fedpark hub serve`, which starts embedded storage"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    buckets = settings.buckets()
    objects = ObjectStore(
        settings.s3_endpoint,
        settings.s3_access_key,
        settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
        region=settings.s3_region,
        buckets=tuple(buckets.values()),
        scratch_dir=settings.data_dir / "scratch",
    )
    return Storage(Catalog(settings.catalog_url), objects, buckets)


@dataclass
class HubRuntime:
    settings: Settings
    storage: Storage
    identity: IdentityService
    audit: AuditService
    key: HubKey
    contracts: ContractService
    datasets: DatasetService
    experiments: ExperimentService
    runs: RunReportService
    supervisor: RunSupervisor
    throttle: Throttle
    federation: FederationService
    metrics: HubMetrics

    @classmethod
    def build(cls, settings: Settings, flower: FlowerControl | None = None) -> HubRuntime:
        """Wire the parts together; opens no connection yet.

        Parameters
        ----------
        settings
            The hub's configuration.
        flower
            The SuperLink's Control API to use instead of the one ``settings.superlink``
            names (tests give a fake of it); None: built from the settings, as in production.
        """
        storage = build_storage(settings)
        metrics = HubMetrics()  # this hub's own registry (see fedpark.hub.metrics)
        storage.objects.on_error = storage.catalog.on_error = metrics.on_error
        metrics.watch_experiments(lambda: _experiments_by_status(storage))
        audit_key = (
            settings.audit_key.get_secret_value().encode()
            if settings.audit_key
            else load_or_create_key(settings.data_dir / "audit.key")
        )
        key = HubKey.load_or_create(settings.signing_key_path)
        audit = AuditService(storage.catalog, audit_key, metrics)
        storage.catalog.on_write = audit.record_with_change  # each change with its record
        contracts = ContractService(storage, key, settings.base_url)
        if flower is None and settings.superlink:
            ca = settings.flower_ca_file.read_bytes() if settings.flower_ca_file else None
            flower = FlowerControl(settings.superlink, ca)
        if flower is not None:
            flower.on_error = metrics.on_error
        return cls(
            experiments=ExperimentService(storage, contracts, settings.base_url, flower),
            runs=RunReportService(storage, key, settings.base_url, metrics),
            supervisor=RunSupervisor(storage, flower, settings.base_url, settings.run_restarts),
            settings=settings,
            key=key,
            contracts=contracts,
            datasets=DatasetService(storage, contracts, metrics),
            storage=storage,
            identity=IdentityService(
                storage,
                token_ttl_days=settings.token_ttl_days,
                token_max_ttl_days=settings.token_max_ttl_days,
            ),
            audit=audit,
            federation=FederationService(flower),
            throttle=Throttle(
                settings.auth_failures_per_minute, settings.requests_per_token_per_minute
            ),
            metrics=metrics,
        )

    def start(self) -> str | None:
        """Reach storage, migrate, bootstrap; returns a new bootstrap admin token once."""
        self.storage.start()
        return bootstrap_admin(
            self.storage, self.settings.data_dir, self.settings.token_max_ttl_days
        )

    def close(self) -> None:
        self.storage.close()


def _experiments_by_status(storage: Storage) -> dict[str, int]:
    with storage.unit_of_work() as uow:
        return uow.experiments.count_by_status()
