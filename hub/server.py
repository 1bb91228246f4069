"""Running the hub process: uvicorn, with embedded storage when none is configured."""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import typer
import uvicorn
from pydantic import SecretStr

from fedpark.hub.errors import ConfigurationError
from fedpark.hub.flower.superlink import (
    SuperLink,
    SuperLinkConfig,
    check_port_free,
    is_loopback,
)
from fedpark.hub.logs import configure_logging
from fedpark.hub.settings import Settings
from fedpark.hub.storage.embedded import EmbeddedS3

if TYPE_CHECKING:
    from fedpark.hub.flower.control import FlowerControl
    from fedpark.hub.metrics import HubMetrics

FLEET_GATE_PORT = 9092


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


def bind_listener(host: str, port: int) -> socket.socket:
    """The hub's listening socket, bound before anything is started or written: a busy port
    is an error at once, not after storage, migrations and a new admin."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError:
        raise ConfigurationError(f"cannot resolve the address {host!r} (--host)") from None
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"port {port} is in use on {host}: another hub (or another program) listens "
                "there; stop it, or start this one with --port"
            ) from None
        raise ConfigurationError(
            f"cannot listen on {host}:{port} (not an address of this machine, or a "
            "privileged port?)"
        ) from None
    listener.listen(2048)  # connections wait in the backlog until uvicorn serves
    return listener


def fleet_address(settings: Settings, superlink: SuperLinkConfig) -> str:
    """Where factories' SuperNodes connect to a SuperLink started with the hub: the
    SuperLink itself on loopback, else the Fleet gate on the hub's public host."""
    if settings.fleet_address:
        return settings.fleet_address
    if is_loopback(settings.host):
        return superlink.address
    host = urlsplit(settings.public_url).hostname if settings.public_url else settings.host
    if not host or host in ("0.0.0.0", "::"):  # noqa: S104
        host = socket.getfqdn()
    return f"{host}:{FLEET_GATE_PORT}"


@contextlib.contextmanager
def fleet_gate(settings: Settings, superlink: SuperLinkConfig) -> Iterator[None]:
    """Flower's Fleet API (and nothing else) on the hub's host, for factories elsewhere; the
    SuperLink itself, Control API included, stays on loopback."""
    from fedpark.hub.flower.gate import build_gate

    config = uvicorn.Config(
        build_gate(superlink.address),
        host=settings.host,
        port=FLEET_GATE_PORT,
        log_config=None,
        ssl_certfile=str(settings.tls_certfile) if settings.tls_certfile else None,
        ssl_keyfile=str(settings.tls_keyfile) if settings.tls_keyfile else None,
    )
    listener = bind_listener(settings.host, FLEET_GATE_PORT)
    gate = uvicorn.Server(config)
    thread = threading.Thread(target=gate.run, kwargs={"sockets": [listener]}, name="fleet gate")
    thread.start()
    try:
        yield
    finally:
        gate.should_exit = True
        thread.join(10)
        listener.close()


def superlink_line(settings: Settings, flower: FlowerControl | None) -> str:
    """What the banner says about Flower: the hub without it runs no experiments."""
    if not settings.superlink:
        return (
            "Flower SuperLink: none, so experiments are off (set FEDPARK_SUPERLINK=host:port, "
            "or start the hub with --with-superlink)"
        )
    from fedpark.hub.errors import FlowerUnavailableError

    try:
        if flower is None:
            raise FlowerUnavailableError.not_configured()
        flower.check(quiet=True)
        state = "answers"
    except FlowerUnavailableError:
        state = "does NOT answer: experiments fail until it does"
    fleet = settings.fleet_address or settings.superlink
    return f"Flower SuperLink at {settings.superlink} {state}; factories connect to {fleet}"


@contextlib.contextmanager
def loopback_metrics(metrics: HubMetrics, port: int) -> Iterator[None]:
    """``/metrics`` without a token on 127.0.0.1:``port`` (FEDPARK_METRICS_PORT): only this
    machine reaches it, so a local Prometheus needs no admin token to hold and renew."""
    from prometheus_client import start_http_server

    try:
        server, thread = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    except OSError:
        raise ConfigurationError(
            f"FEDPARK_METRICS_PORT {port} is in use on 127.0.0.1: choose another port"
        ) from None
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def serve_hub(settings: Settings, superlink: SuperLinkConfig | None = None) -> None:
    """Bind, start storage (embedded if needed) and the SuperLink (if asked), migrate,
    bootstrap, then serve until a signal."""
    from fedpark.hub.app import announce_bootstrap_token, create_app
    from fedpark.hub.runtime import HubRuntime

    started = time.perf_counter()
    configure_logging(settings.log_level, settings.log_format)
    listener = bind_listener(settings.host, settings.port)
    if superlink is not None:  # its port too, before anything is started or written
        try:
            check_port_free(superlink.host, superlink.port, "the Flower SuperLink")
        except ConfigurationError as exc:
            listener.close()
            raise ConfigurationError(f"{exc} (--superlink-port)") from None
    with contextlib.ExitStack() as stack:
        stack.callback(listener.close)
        ready = stack.enter_context(embedded_storage_if_needed(settings))
        if superlink is not None:
            stack.enter_context(SuperLink(superlink))
            ready = ready.model_copy(
                update={
                    "superlink": superlink.address,
                    "fleet_address": fleet_address(ready, superlink),
                }
            )
            if not is_loopback(ready.host) and not settings.fleet_address:
                stack.enter_context(fleet_gate(ready, superlink))
        runtime = HubRuntime.build(ready)
        if ready.metrics_port:
            stack.enter_context(loopback_metrics(runtime.metrics, ready.metrics_port))
        token = runtime.start()
        if token:
            announce_bootstrap_token(token, ready)
        app = create_app(ready, runtime)
        scheme = "https" if ready.tls_certfile else "http"
        typer.echo(
            f"FedPark hub ready on {scheme}://{ready.host}:{ready.port} "
            f"(data in {ready.data_dir}, started in {time.perf_counter() - started:.1f}s)\n"
            + superlink_line(ready, runtime.federation.flower),
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
            server.run(sockets=[listener])
        finally:
            runtime.close()
