"""`fedpark pki` (the park's certificate authority) and `fedpark hub gate` (the Fleet gate)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedpark.hub.errors import FedparkError
from fedpark.hub.flower.superlink import DEFAULT_PORT

pki_app = typer.Typer(
    help="The park's certificate authority for the Flower SuperLink and the Fleet gate.",
    no_args_is_help=True,
)

DirOpt = Annotated[
    Path, typer.Option("--dir", help="Folder of the CA (ca.pem, ca.key) and its certificates.")
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(code)


@pki_app.command("init")
def init(
    folder: DirOpt = Path("fedpark-pki"),
    name: Annotated[str, typer.Option(help="The CA's common name.")] = "FedPark park CA",
) -> None:
    """Create the park's CA (EC P-384, key mode 0600). Never replaces an existing one."""
    from fedpark.hub.flower.pki import init_ca

    try:
        cert = init_ca(folder, name)
    except FedparkError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"CA certificate {cert} (give it to the hub: FEDPARK_FLOWER_CA_FILE); key beside it")


@pki_app.command("issue")
def issue(
    name: Annotated[str, typer.Argument(help="File name, e.g. superlink or gate.")],
    host: Annotated[
        list[str], typer.Option("--host", help="DNS name or IP address it serves (repeatable).")
    ],
    folder: DirOpt = Path("fedpark-pki"),
    days: Annotated[int, typer.Option(help="Validity in days.")] = 825,
) -> None:
    """Sign a server certificate for the SuperLink or the gate with the park's CA."""
    from fedpark.hub.flower.pki import issue as issue_cert

    try:
        cert, key = issue_cert(folder, name, host, days)
    except FedparkError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"certificate {cert} (with the CA appended), key {key} (mode 0600)")


def gate(
    superlink: Annotated[
        str, typer.Option(help="host:port of the SuperLink, on the park's private network.")
    ],
    host: Annotated[str, typer.Option(help="Address factories connect to.")] = "0.0.0.0",  # noqa: S104
    port: Annotated[int, typer.Option(help="Port factories connect to.")] = 9092,
    ca: Annotated[
        Path | None, typer.Option(help="The park's CA: the SuperLink speaks TLS signed by it.")
    ] = None,
    certfile: Annotated[Path | None, typer.Option(help="The gate's certificate (PEM).")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="The gate's key (PEM).")] = None,
) -> None:
    """Serve only Flower's Fleet API to factories; refuse the Control API and the rest."""
    import uvicorn

    from fedpark.hub.flower.gate import build_gate

    if (certfile is None) != (keyfile is None):
        raise _fail("give both --certfile and --keyfile, or neither")
    scheme = "https" if certfile else "http"
    typer.echo(f"Fleet gate on {scheme}://{host}:{port} -> {superlink}", err=True)
    uvicorn.run(
        build_gate(superlink, ca),
        host=host,
        port=port,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        log_level="info",
    )


superlink_app = typer.Typer(
    help="Run the park's Flower SuperLink, configured for a FedPark hub.", no_args_is_help=True
)


@superlink_app.command("serve")
def superlink_serve(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Its state and log go to DATA_DIR/superlink (env FEDPARK_DATA_DIR; default "
            "~/.local/share/fedpark).",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to serve on; keep it on the park's private network.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port of Flower's Fleet and Control APIs.")
    ] = DEFAULT_PORT,
    ca: Annotated[Path | None, typer.Option(help="The park's CA (`fedpark pki init`).")] = None,
    certfile: Annotated[
        Path | None, typer.Option(help="The SuperLink's certificate (`fedpark pki issue`).")
    ] = None,
    keyfile: Annotated[Path | None, typer.Option(help="The SuperLink's key.")] = None,
    supernode_auth: Annotated[
        bool,
        typer.Option(
            "--supernode-auth",
            help="Let in only the factories' SuperNodes the hub registered (set "
            "FEDPARK_SUPERNODE_AUTH=true for the hub too).",
        ),
    ] = False,
    database: Annotated[
        Path | None,
        typer.Option(
            help="Flower's state database (runs, registered node keys), so they outlive a "
            "restart (default: DATA_DIR/superlink/state.db)."
        ),
    ] = None,
    in_memory: Annotated[
        bool,
        typer.Option(
            "--in-memory",
            help="Keep Flower's state in memory: faster rounds; a restart loses the runs "
            "(the hub resumes them from their last checkpoint) and the registered node keys "
            "(factories register again when they join again).",
        ),
    ] = False,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure", help="Plain HTTP on a non-loopback --host (a private network only)."
        ),
    ] = False,
) -> None:
    """Start a Flower SuperLink for the hub and keep it running (Ctrl-C stops it).

    It finds Flower's helper commands whether or not the venv is activated, installs nothing
    per run, and serves TLS with the park's certificates. Then tell the hub:
    FEDPARK_SUPERLINK=HOST:PORT (and FEDPARK_FLOWER_CA_FILE with TLS).
    """
    import signal
    import threading

    from fedpark.hub.flower.superlink import SuperLink, SuperLinkConfig
    from fedpark.hub.settings import Settings

    folder = (data_dir or Settings().data_dir).expanduser().resolve() / "superlink"
    if in_memory and database is not None:
        raise _fail("give --database or --in-memory, not both")
    config = SuperLinkConfig(
        state_dir=folder,
        host=host,
        port=port,
        database=None if in_memory else (database or folder / "state.db"),
        ca_file=ca,
        certfile=certfile,
        keyfile=keyfile,
        supernode_auth=supernode_auth,
        insecure=insecure,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        link = SuperLink(config).start()
    except FedparkError as exc:
        raise _fail(str(exc)) from None
    scheme = "https" if config.tls else "http"
    typer.echo(
        f"Flower SuperLink on {scheme}://{host}:{port} (log {config.log_path}). "
        "For the hub:\n"
        f"    export FEDPARK_SUPERLINK={config.address}"
        + (f" FEDPARK_FLOWER_CA_FILE={ca.resolve()}" if ca else "")
        + (" FEDPARK_SUPERNODE_AUTH=true" if supernode_auth else "")
        + "\nCtrl-C stops it.",
        err=True,
    )
    try:
        while not stop.wait(0.5):
            if not link.alive():
                raise _fail(f"the Flower SuperLink stopped; see {config.log_path}", code=1)
    finally:
        link.stop()
