"""`fedpark pki` (the park's certificate authority) and `fedpark hub gate` (the Fleet gate)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedpark.hub.errors import FedparkError

pki_app = typer.Typer(
    help="The park's certificate authority for the Flower SuperLink and the Fleet gate.",
    no_args_is_help=True,
)

DirOpt = Annotated[
    Path, typer.Option("--dir", help="Folder of the CA (ca.pem, ca.key) and its certificates.")
]


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(2)


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
