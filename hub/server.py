"""Running the hub process: uvicorn, with embedded storage when none is configured."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator

import typer
import uvicorn
from pydantic import SecretStr

from fedpark.hub.settings import Settings
from fedpark.hub.storage.embedded import EmbeddedS3


class HubServer(uvicorn.Server):
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


def serve_hub(settings: Settings) -> None:
    """Start storage (embedded if needed), migrate, bootstrap, then serve until a signal."""
    from fedpark.hub.app import announce_bootstrap_token, create_app
    from fedpark.hub.errors import ConfigurationError
    from fedpark.hub.runtime import HubRuntime

    started = time.perf_counter()
    with embedded_storage_if_needed(settings) as ready:
        runtime = HubRuntime.build(ready)
        token = runtime.start()
        if token:
            announce_bootstrap_token(token, ready)
        app = create_app(ready, runtime)
        scheme = "https" if ready.tls_certfile else "http"
        typer.echo(
            f"FedPark hub ready on {scheme}://{ready.host}:{ready.port} "
            f"(data in {ready.data_dir}, started in {time.perf_counter() - started:.1f}s)",
            err=True,
        )
        config = uvicorn.Config(
            app,
            host=ready.host,
            port=ready.port,
            log_config=None,
            ssl_certfile=str(ready.tls_certfile) if ready.tls_certfile else None,
            ssl_keyfile=str(ready.tls_keyfile) if ready.tls_keyfile else None,
        )
        server = HubServer(config)
        try:
            server.run()
        finally:
            runtime.close()
        if not server.started:
            raise ConfigurationError(f"could not listen on {ready.host}:{ready.port} (in use?)")
