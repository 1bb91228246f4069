"""The hub's FastAPI application, built by :func:`create_app` from explicit settings."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.concurrency import run_in_threadpool

from fedpark.hub import console
from fedpark.hub.api import problems
from fedpark.hub.api.audit_middleware import AuditMiddleware
from fedpark.hub.api.headers import SecurityHeaders
from fedpark.hub.api.limits import BodySizeLimit, JsonShapeLimit
from fedpark.hub.api.request_metrics import RequestMetrics
from fedpark.hub.api.routes import audit, contracts, experiments, health, identity, metrics
from fedpark.hub.runtime import HubRuntime
from fedpark.hub.settings import Settings
from fedpark.hub.version import __version__

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


class RunWatcher:
    """Polls Flower for the hub's active runs (status changes, losses, stops, stalls)."""

    def __init__(self, runtime: HubRuntime, interval: float = 2.0) -> None:
        self.runtime = runtime
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fedpark-run-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.runtime.supervisor.watch()
            except Exception:  # keep watching; a bad cycle must not end the hub
                log.exception("run watcher cycle failed")


def announce_bootstrap_token(token: str, settings: Settings) -> None:
    """Tell the operator where the bootstrap admin's token is; show it only on a terminal.

    Under a service manager stderr goes to a log (journald, a container's log driver), and a
    secret must never land in a log: there only the file's path is printed.
    """
    path = settings.data_dir / "bootstrap-admin-token"
    shown = f"Its API token, shown once:\n\n    {token}\n\nIt is also in {path}"
    hidden = f"Its API token is in {path}"
    sys.stderr.write(
        "\nFirst start: created the park operator's admin. "
        f"{shown if sys.stderr.isatty() else hidden} (mode 0600). Use it with\n"
        f"    export FEDPARK_HUB={settings.base_url} FEDPARK_TOKEN=$(cat {path})\n\n"
    )


def create_app(settings: Settings, runtime: HubRuntime | None = None) -> FastAPI:
    """Build the hub.

    Parameters
    ----------
    settings
        The hub's configuration.
    runtime
        Storage and services already started (``fedpark hub serve`` starts them first to fail
        fast with a clear message); when None the app builds and starts them on startup.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = runtime is None
        app.state.runtime = runtime or HubRuntime.build(settings)
        if own:
            token = await run_in_threadpool(app.state.runtime.start)
            if token:
                announce_bootstrap_token(token, settings)
        watcher = RunWatcher(app.state.runtime)
        watcher.start()
        try:
            yield
        finally:
            watcher.stop()
            if own:
                app.state.runtime.close()

    app = FastAPI(
        title="FedPark hub",
        version=__version__,
        summary="Dataset contracts, federated experiments and signed models for industrial parks",
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(JsonShapeLimit)  # inside the size limit: the body it reads is bounded
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        overrides={f"{API_PREFIX}/runs/": settings.max_artifact_bytes},
    )
    app.add_middleware(
        SecurityHeaders, api_prefix=API_PREFIX, https=settings.base_url.startswith("https://")
    )
    app.add_middleware(AuditMiddleware)  # over-size refusals are audited too
    app.add_middleware(RequestMetrics)  # outermost: counts every answer as it was sent
    app.include_router(health.router)
    app.include_router(metrics.router)
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(identity.router)
    api.include_router(audit.router)
    api.include_router(contracts.router)
    api.include_router(contracts.keys)
    api.include_router(contracts.datasets)
    api.include_router(experiments.router)
    api.include_router(experiments.runs)
    api.include_router(experiments.models)
    api.include_router(experiments.federation)
    app.include_router(api)
    console.install(app)
    return app
