"""The hub's FastAPI application, built by :func:`create_app` from explicit settings."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.concurrency import run_in_threadpool

from fedpark.hub.api import problems
from fedpark.hub.api.audit_middleware import AuditMiddleware
from fedpark.hub.api.limits import BodySizeLimit
from fedpark.hub.api.routes import audit, contracts, health, identity
from fedpark.hub.runtime import HubRuntime
from fedpark.hub.settings import Settings
from fedpark.hub.version import __version__

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def announce_bootstrap_token(token: str, settings: Settings) -> None:
    """Show the bootstrap token on the terminal once (never through logging)."""
    path = settings.data_dir / "bootstrap-admin-token"
    sys.stderr.write(
        "\nFirst start: created the park operator's admin. Its API token, shown once:\n\n"
        f"    {token}\n\nIt is also in {path} (mode 0600). Use it with\n"
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
        try:
            yield
        finally:
            if own:
                app.state.runtime.close()

    app = FastAPI(
        title="FedPark hub",
        version=__version__,
        summary="Dataset contracts, federated experiments and signed models for industrial parks",
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AuditMiddleware)  # outermost: over-size refusals are audited too
    app.include_router(health.router)
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(identity.router)
    api.include_router(audit.router)
    api.include_router(contracts.router)
    api.include_router(contracts.keys)
    app.include_router(api)
    return app
