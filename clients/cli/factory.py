"""``fedpark factory join``: connect this factory's data to the park's federation."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Annotated

import typer

from fedpark.clients.api import HubClient
from fedpark.clients.cli.common import HubOpt, TokenOpt, client, out
from fedpark.clients.errors import HubApiError

app = typer.Typer(help="Run a factory's federated client next to its data.", no_args_is_help=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node_key(api: HubClient, work_dir: Path) -> Path:
    """This factory's SuperNode key (EC P-384, OpenSSH, mode 0600), created once and
    registered through the hub, which lets it into the SuperLink; the private key never
    leaves the factory."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = work_dir / "node-key"
    if not path.exists():
        new = ec.generate_private_key(ec.SECP384R1())
        private = new.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private)
    key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    with api:
        try:
            api.post("/federation/nodes", {"public_key": public.decode()})
        except HubApiError as exc:
            if exc.status != 409:  # 409: registered when this factory joined before
                raise
    return path


def _pin_key(path: Path, pem: str) -> None:
    """Trust the hub's key on first join; refuse if it changes afterwards."""
    if path.exists():
        if path.read_text() != pem:
            out.print(
                f"[red]error:[/red] the hub's signing key changed (pinned in {path}); "
                "if the park rotated it on purpose, delete that file and join again",
                highlight=False,
            )
            raise typer.Exit(2)
        return
    path.write_text(pem)


@app.command("join")
def join(
    data: Annotated[Path, typer.Option(help="This factory's data file (Parquet, IPC or CSV).")],
    work_dir: Annotated[
        Path, typer.Option(help="Pinned hub key, token file, caches, logs.")
    ] = Path("fedpark-factory"),
    hub: HubOpt = None,
    token: TokenOpt = None,
) -> None:
    """Start this factory's Flower SuperNode for the hub's federation, and keep it running.

    Only model updates and aggregate metrics leave; before each run the client checks that the
    contract carries the hub's signature and that the data meets it.
    """
    from fedpark.clients.supernode import Supervisor, flower_env, supernode_argv

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not data.is_file():
        raise typer.BadParameter(f"{data} is not a file", param_hint="--data")
    with client(hub, token) as api:
        me = api.get("/me")
        federation = api.get("/federation")
        base_url = api.base_url
    work_dir = work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    _pin_key(work_dir / "hub-key.pem", federation["hub_key_pem"])
    token_file = work_dir / "token"
    token_file.unlink(missing_ok=True)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:  # a file, so the token is not in the process list
        fh.write(token or os.environ.get("FEDPARK_TOKEN", ""))
    node_config = {
        "data-path": str(data.resolve()),
        "hub-url": base_url,
        "token-file": str(token_file),
        "hub-key": str(work_dir / "hub-key.pem"),
        "org": me["organization"]["id"],
        "work-dir": str(work_dir),
    }
    ca = None
    if federation.get("fleet_ca_pem"):  # the park's own CA: TLS to the Fleet gate
        ca = work_dir / "fleet-ca.pem"
        _pin_key(ca, federation["fleet_ca_pem"])
    auth_key = None
    if federation.get("node_auth"):  # the SuperLink lets in only registered node keys
        auth_key = _node_key(client(hub, token), work_dir)
    argv = supernode_argv(federation["fleet_address"], _free_port(), node_config, ca, auth_key)
    supervisor = Supervisor(argv, work_dir / "supernode.log", flower_env(work_dir / "flwr"))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: supervisor.stop())
    out.print(
        f"{me['organization']['id']} joined the federation at "
        f"{federation['fleet_address']} (hub key {federation['hub_key_id']}); "
        f"logs in {work_dir / 'supernode.log'}. Ctrl-C leaves.",
        highlight=False,
    )
    thread = threading.Thread(target=supervisor.run, name="supernode-supervisor")
    thread.start()
    while thread.is_alive():
        thread.join(0.5)
    out.print("left the federation")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="factory")
