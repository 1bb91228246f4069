"""The hub in the test's own process: ``create_app(settings, runtime)`` behind Starlette's
TestClient, on a fresh SQLite catalog and fresh buckets of the session's real embedded S3.

For tests of the hub's own rules (services, routes, error mapping): no process to start, so
they belong to the unit tier. What is about processes (restarts, crashes, replicas, real
HTTP and TLS) stays with :class:`harness.HubProcess`. The interface is the same
(``client(token)``, ``admin_token``), so ``harness.build_park`` works on either.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fedpark.hub.app import create_app
from fedpark.hub.flower.control import FlowerControl
from fedpark.hub.runtime import HubRuntime
from fedpark.hub.settings import Settings
from fedpark.hub.storage.embedded import EmbeddedS3


@dataclass
class InProcessHub:
    app: FastAPI
    runtime: HubRuntime
    admin_token: str
    transport: httpx.BaseTransport  # the app behind Starlette's test transport, started once
    url: str = "http://testserver"  # the root, as HubProcess.url: absolute paths work on both

    @property
    def database_url(self) -> str:
        return self.runtime.settings.catalog_url

    @property
    def bucket_prefix(self) -> str:
        return self.runtime.settings.bucket_prefix

    def client(self, token: str | None = None) -> httpx.Client:
        """A client of the API (``/api/v1``), as :meth:`HubProcess.client` gives one."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(
            transport=self.transport, base_url=f"{self.url}/api/v1", headers=headers
        )


@contextmanager
def in_process_hub(
    s3: EmbeddedS3, data_dir: Path, flower: FlowerControl | None = None, **settings: Any
) -> Iterator[InProcessHub]:
    """A hub of the test's own: its catalog in ``data_dir``, buckets of its own prefix; its
    startup and shutdown run once, as a server's would. ``flower``: the Control API the hub
    drives (a fake, tests/fakeflower.py), else none unless ``settings`` names a SuperLink."""
    config = Settings(
        data_dir=data_dir,
        s3_endpoint=s3.endpoint,
        s3_access_key=s3.credentials.access_key,
        s3_secret_key=s3.credentials.secret_key,
        bucket_prefix=f"inproc-{uuid.uuid4().hex[:8]}",
        audit_key=secrets.token_hex(32),
        **settings,
    )
    runtime = HubRuntime.build(config, flower=flower)
    token = runtime.start()
    assert token is not None, "a fresh catalog bootstraps its admin"
    app = create_app(config, runtime)
    try:
        # raise_server_exceptions=False: a 500 is an answer to check, as over HTTP.
        with TestClient(app, raise_server_exceptions=False) as server:
            yield InProcessHub(app, runtime, token, server._transport)
    finally:
        runtime.close()
