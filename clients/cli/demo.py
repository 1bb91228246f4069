"""``fedpark demo``: a whole park on this machine, started for real."""

from __future__ import annotations

import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fedpark.clients.api import HubClient
from fedpark.clients.cli.common import out
from fedpark.clients.errors import HubError, HubUnreachableError
from fedpark.clients.processes import ChildProcess

MARKER = ".fedpark-demo"

# The sample park: organizations, and one member with a role in each.
SAMPLE_ORGS = (
    ("rhine-steel", "Rhine Steel Works", "factory"),
    ("delta-polymers", "Delta Polymers", "factory"),
    ("tu-lab", "University Process Lab", "university"),
)
SAMPLE_USERS = (
    ("steward", "park-operator", "steward"),
    ("rhine-ops", "rhine-steel", "factory"),
    ("delta-ops", "delta-polymers", "factory"),
    ("researcher", "tu-lab", "researcher"),
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(data_dir: Path) -> None:
    """Start from an empty folder; only ever wipe one the demo itself made."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).exists():
            raise typer.BadParameter(f"{data_dir} is not empty and not a demo folder")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    (data_dir / MARKER).write_text("made by `fedpark demo`; deleted by the next run\n")


def _wait_healthy(api: HubClient, hub: ChildProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not hub.alive():
            raise HubError(f"the hub exited during start:\n{hub.log_tail()}")
        try:
            if api.health().get("status") == "up":
                return
        except HubUnreachableError:
            pass
        time.sleep(0.2)
    raise HubError(f"the hub did not become healthy in {timeout:.0f}s:\n{hub.log_tail()}")


def _populate(api: HubClient) -> dict[str, str]:
    """Create the sample park; return each sample user's token."""
    for org_id, name, kind in SAMPLE_ORGS:
        api.post("/organizations", {"id": org_id, "name": name, "kind": kind})
    tokens = {}
    for username, org_id, role in SAMPLE_USERS:
        user = api.post("/users", {"username": username, "org_id": org_id, "role": role})
        created = api.post("/tokens", {"name": "demo", "user_id": user["id"]})
        tokens[username] = created["token"]
    return tokens


def demo(
    data_dir: Annotated[
        Path, typer.Option(help="Folder for the demo's hub and storage (wiped on each run).")
    ] = Path("fedpark-demo"),
    port: Annotated[int | None, typer.Option(help="Hub port [default: a free one].")] = None,
    keep_running: Annotated[
        bool, typer.Option(help="Keep the hub up until Ctrl-C (else stop after the setup).")
    ] = True,
) -> None:
    """Start a hub with embedded storage, create a sample park and show how to reach it."""
    started = time.perf_counter()
    data_dir = data_dir.resolve()
    _prepare(data_dir)
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    hub = ChildProcess(
        [
            sys.executable,
            "-m",
            "fedpark.clients.cli",
            "hub",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        data_dir / "logs" / "hub.log",
    )
    out.print(f"Starting the FedPark hub and its embedded S3 storage in {data_dir} ...")
    hub.start()
    try:
        with HubClient(url) as anonymous:
            _wait_healthy(anonymous, hub, timeout=90)
        admin_token = (data_dir / "bootstrap-admin-token").read_text().strip()
        with HubClient(url, admin_token) as api:
            tokens = _populate(api)
            health = api.health()
        _report(url, data_dir, health, tokens, time.perf_counter() - started)
        if keep_running:
            out.print("\nThe hub runs until you press Ctrl-C.")
            while hub.alive():
                time.sleep(0.5)
            raise HubError(f"the hub stopped unexpectedly:\n{hub.log_tail()}")
    except KeyboardInterrupt:
        out.print("\nStopping ...")
    finally:
        hub.stop()
        out.print(f"Hub and storage stopped. Logs and data stay in {data_dir}.")


def _report(
    url: str, data_dir: Path, health: dict[str, object], tokens: dict[str, str], took: float
) -> None:
    out.print(f"\n[bold green]FedPark hub is up[/bold green] at {url} ({took:.1f}s)")
    out.print(f"health: {health}", highlight=False)
    table = Table(title="Sample park: users and their API tokens")
    for column in ("user", "organization", "role", "token"):
        table.add_column(column, overflow="fold")
    for username, org_id, role in SAMPLE_USERS:
        table.add_row(username, org_id, role, tokens[username])
    table.add_row("admin", "park-operator", "admin", f"in {data_dir / 'bootstrap-admin-token'}")
    out.print(table)
    out.print(
        "\nTry it:\n"
        f"  export FEDPARK_HUB={url}\n"
        f"  export FEDPARK_TOKEN=$(cat {data_dir / 'bootstrap-admin-token'})\n"
        "  fedpark org list\n"
        "  fedpark audit verify\n"
        f"  open {url}/docs for the API"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
