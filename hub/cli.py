"""The hub's command groups, added to ``fedpark`` through the ``fedpark.cli`` entry point."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import SecretStr

from fedpark.hub.app import announce_bootstrap_token, create_app
from fedpark.hub.errors import FedparkError
from fedpark.hub.runtime import HubRuntime
from fedpark.hub.settings import Settings
from fedpark.hub.storage.embedded import EmbeddedS3

hub_app = typer.Typer(help="Run and maintain a FedPark hub.", no_args_is_help=True)
storage_app = typer.Typer(help="The embedded S3 server.", no_args_is_help=True)

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where the hub keeps its catalog, secrets and embedded storage "
        "[env FEDPARK_DATA_DIR; default ~/.local/share/fedpark].",
    ),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(code)


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM after shutdown, which would kill us before the
    embedded storage is stopped; here a signal only asks the server to exit."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@contextlib.contextmanager
def embedded_storage_if_needed(settings: Settings) -> Iterator[Settings]:
    """Yield settings that point at S3: the configured server, or an embedded one."""
    if settings.s3_endpoint:
        yield settings
        return
    with EmbeddedS3(settings.data_dir) as s3:
        typer.echo(f"embedded S3 storage (SeaweedFS) on http://{s3.endpoint}", err=True)
        yield settings.model_copy(
            update={
                "s3_endpoint": s3.endpoint,
                "s3_access_key": s3.credentials.access_key,
                "s3_secret_key": SecretStr(s3.credentials.secret_key),
                "s3_secure": False,
            }
        )


@hub_app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind [default 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default 8470].")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Start the hub; with no S3 endpoint configured, also an embedded S3 server."""
    settings = _settings(host=host, port=port, data_dir=data_dir)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    started = time.perf_counter()
    try:
        with embedded_storage_if_needed(settings) as ready:
            runtime = HubRuntime.build(ready)
            token = runtime.start()
            if token:
                announce_bootstrap_token(token, ready)
            app = create_app(ready, runtime)
            typer.echo(
                f"FedPark hub ready on http://{ready.host}:{ready.port} "
                f"(data in {ready.data_dir}, started in {time.perf_counter() - started:.1f}s)",
                err=True,
            )
            server = _Server(uvicorn.Config(app, host=ready.host, port=ready.port, log_config=None))
            try:
                server.run()
            finally:
                runtime.close()
            if not server.started:
                raise _fail(f"could not listen on {ready.host}:{ready.port}")
    except FedparkError as exc:
        raise _fail(str(exc)) from None


@hub_app.command("verify-audit")
def verify_audit(data_dir: DataDirOpt = None) -> None:
    """Verify the audit chain offline, straight from the catalog (needs the audit key)."""
    settings = _settings(data_dir=data_dir)
    from fedpark.hub.services.audit import AuditService
    from fedpark.hub.services.bootstrap import load_or_create_key
    from fedpark.hub.storage import Catalog

    key_path = settings.data_dir / "audit.key"
    if settings.audit_key is None and not key_path.exists():
        raise _fail(f"no audit key: set FEDPARK_AUDIT_KEY or provide {key_path}")
    key = (
        settings.audit_key.get_secret_value().encode()
        if settings.audit_key
        else load_or_create_key(key_path)
    )
    try:
        report = AuditService(Catalog(settings.catalog_url), key).verify()
    except FedparkError as exc:
        raise _fail(str(exc)) from None
    if report.ok:
        typer.echo(f"audit chain intact: {report.records} records, head {report.head_hash}")
        return
    typer.echo(f"audit chain BROKEN ({report.records} records):")
    for problem in report.problems:
        typer.echo(f"  - {problem}")
    raise typer.Exit(1)


@storage_app.command("serve")
def storage_serve(
    data_dir: DataDirOpt = None,
    port: Annotated[int | None, typer.Option(help="S3 port [default: a free one].")] = None,
) -> None:
    """Run the embedded S3 server alone until Ctrl-C."""
    settings = _settings(data_dir=data_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with EmbeddedS3(settings.data_dir, port=port) as s3:
            typer.echo(
                f"S3 endpoint http://{s3.endpoint} (access key {s3.credentials.access_key}; "
                f"secret in {settings.data_dir / 's3-identity.json'}). Ctrl-C stops it."
            )
            sys.stdout.flush()
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(0.5):
                    pass
    except FedparkError as exc:
        raise _fail(str(exc)) from None


def register(app: typer.Typer) -> None:
    app.add_typer(hub_app, name="hub")
    app.add_typer(storage_app, name="storage")
