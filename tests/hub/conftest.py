"""The hub's tests run on both catalogs FedPark supports: SQLite (the default) and PostgreSQL
(production). The session's hub, and with it ``park``, is parametrized over both; tests that
start hubs of their own take ``database`` for the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import HubProcess, Park, build_park, hub_env
from inprocess import in_process_hub
from postgres import PostgresCluster

from fedpark.hub.storage.embedded import EmbeddedS3

BACKENDS = ("sqlite", "postgresql")
# SQLite in the unit tier; PostgreSQL, a server process of the session's own, with the
# integration suite.
TIERED_BACKENDS = ("sqlite", pytest.param("postgresql", marks=pytest.mark.integration))


def _database_env(backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    if backend == "sqlite":
        return {}
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return {"FEDPARK_DATABASE_URL": cluster.new_database()}


@pytest.fixture(scope="session", params=BACKENDS)
def catalog_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def hub(
    s3_server: EmbeddedS3,
    catalog_backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HubProcess]:
    """The session's hub on one catalog backend (each test using it runs on both)."""
    data_dir: Path = tmp_path_factory.mktemp(f"hub-{catalog_backend}")
    env = hub_env(s3_server, **_database_env(catalog_backend, request))
    process = HubProcess(data_dir, env).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def park(hub: HubProcess) -> Park:
    """The park on this directory's hub: a fixture of its own, so that the park made for
    other tests on the unparametrized hub is never reused here (pytest would: its cache
    knows nothing of the override)."""
    return build_park(hub)


@pytest.fixture(scope="session", params=TIERED_BACKENDS)
def rules_park(
    s3_server: EmbeddedS3, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Park]:
    """A park on a hub in the test's own process, for tests of the hub's rules (who may do
    what, lifecycles, launch checks, answers): SQLite in the unit tier, PostgreSQL with the
    integration suite."""
    backend = str(request.param)
    database = _database_env(backend, request).get("FEDPARK_DATABASE_URL")
    data_dir = tmp_path_factory.mktemp(f"rules-{backend}")
    # Rate limits off, as on the session's hub process (harness.hub_env says why).
    limits = {"auth_failures_per_minute": 0, "requests_per_token_per_minute": 0}
    with in_process_hub(s3_server, data_dir, database_url=database, **limits) as hub:
        yield build_park(hub)  # type: ignore[arg-type]  # the same interface as HubProcess


@pytest.fixture(params=TIERED_BACKENDS)
def database(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings for a hub of the test's own on a fresh catalog: {} for SQLite in its data
    dir, or a new PostgreSQL database (a server process: with the integration suite)."""
    return _database_env(str(request.param), request)
