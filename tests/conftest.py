"""Session-wide real components: one embedded S3 server, one hub over HTTP."""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import HubProcess, Park, build_park, hub_env
from postgres import REQUIRED_ENV, PostgresCluster

from fedpark.hub.storage.embedded import EmbeddedS3
from fedpark.hub.storage.objects import ObjectStore


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    server = EmbeddedS3(tmp_path_factory.mktemp("s3")).start()
    try:
        yield server
    finally:
        # The session's data is thrown away: no need for weed's graceful stop, which waits
        # out its clients' idle connections (2.6 s at the end of every test session).
        server.stop(timeout=0.5)


@pytest.fixture
def object_store(s3_server: EmbeddedS3) -> ObjectStore:
    """An ObjectStore on the session server with a fresh versioned bucket."""
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    store = ObjectStore(
        s3_server.endpoint,
        s3_server.credentials.access_key,
        s3_server.credentials.secret_key,
        buckets=(bucket,),
    )
    store.ensure_buckets()
    return store


@pytest.fixture(scope="session")
def hub(s3_server: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A real hub process on a free port, using the session's S3 server."""
    data_dir: Path = tmp_path_factory.mktemp("hub")
    process = HubProcess(data_dir, hub_env(s3_server)).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def park(hub: HubProcess) -> Park:
    """Two factories with a member of every role, plus the park operator's admin."""
    return build_park(hub)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of the session's own (skipped where none is installed, except
    under CI, which installs one and requires it)."""
    cluster = PostgresCluster.create()
    if cluster is None:
        message = "PostgreSQL server binaries are missing: apt-get install postgresql"
        if os.environ.get(REQUIRED_ENV):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield cluster.start()
    finally:
        cluster.remove()


def pytest_configure(config: pytest.Config) -> None:
    # The session holds ~700 000 long-lived objects (torch, Arrow, Flower, SQLAlchemy) that
    # Python's cyclic collector walked at every full collection: 5.4 s of the unit tier's
    # CPU. Fewer young collections, and the imports frozen once collected (below): 2.0 s.
    gc.set_threshold(20_000, 10, 10)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Everything imported by now lives as long as the session: out of the collector's way."""
    gc.collect()
    gc.freeze()
