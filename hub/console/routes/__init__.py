"""The console's pages, one module per kind of user."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from fedpark.hub.console.routes import admin, auth, contracts, experiments, factory, models
from fedpark.hub.console.views import HERE, Views, error_page


def install(app: FastAPI) -> None:
    """Serve the console at ``/console`` (pages stay out of the API's OpenAPI schema); its
    errors are pages, rendered by ``error_page`` (the API's problem mapping calls it)."""
    app.state.console = Views()
    app.state.error_page = error_page
    for module in (auth, contracts, experiments, models, factory, admin):
        app.include_router(module.router, prefix="/console", include_in_schema=False)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
