"""``fedpark factory join``: connect this factory's data to the park's federation."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fedpark.clients.cli.common import HubOpt, client, out, read_token
from fedpark.clients.cli.csv_dialect import DecimalOpt, DelimiterOpt, EncodingOpt, csv_options
from fedpark.clients.processes import free_port
from fedpark.experiments.protocol.client import HubClient
from fedpark.experiments.protocol.errors import HubApiError
from fedpark.experiments.protocol.node import EVENTS_FILE, EventKind, FactoryEvent, NodeConfig
from fedpark.experiments.protocol.resources.experiments import NodeCreate

if TYPE_CHECKING:
    from fedpark.contracts.dialect import CsvOptions

app = typer.Typer(help="Run a factory's federated client next to its data.", no_args_is_help=True)
log = logging.getLogger("fedpark.factory")


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
            api.register_node(NodeCreate(public_key=public.decode()))
        except HubApiError as exc:
            if exc.status != 409:  # 409: registered when this factory joined before
                raise
    return path


def _check_declared(
    api: HubClient, data: Path, work_dir: Path, csv: CsvOptions | None = None
) -> None:
    """Validate the data now against each approved version this organization declared data
    under, and say what runs on it will do: a refusal seen at start, not mid-run."""
    from fedpark.contracts import DataError, validate_file
    from fedpark.contracts.ref import ContractRef
    from fedpark.experiments.approved import (
        ContractNotVerifiedError,
        ContractUnavailableError,
        fetch_verified,
    )

    declared = api.own_datasets()
    versions = sorted({(d.contract_id, d.version) for d in declared})
    if not versions:
        _say(
            "note: your organization has declared no dataset yet; runs need one under their "
            "contract (`fedpark contract declare`)",
            "yellow",
        )
    for contract_id, version in versions:
        ref = ContractRef(contract_id, version)
        name = ref.display
        try:
            contract = fetch_verified(api, ref, work_dir, work_dir / "hub-key.pem")
            result = validate_file(contract, data, csv_options=csv)
        except ContractUnavailableError as exc:
            _say(f"{name}: cannot fetch the approved contract ({exc})", "yellow")
            continue
        except ContractNotVerifiedError:
            _say(
                f"{name}: its signature does not verify with the pinned hub key; runs on it "
                "will be refused",
                "red",
            )
            continue
        except DataError as exc:
            _say(f"{name}: runs will be refused: {exc}", "red")
            continue
        report = result.report
        if report.passed:
            _say(
                f"{name}: {data.name} meets it ({report.rows} rows, {report.rules_checked} rules)",
                "green",
            )
        else:
            counts = ", ".join(f"{r}={n}" for r, n in report.rule_counts().items())
            _say(
                f"{name}: runs will be refused: {data.name} breaks it ({counts}); "
                f"`fedpark contract validate` shows the rows",
                "red",
            )


def _say(message: str, style: str | None = None) -> None:
    """On a terminal, in colour; else to the log once (`factory join` often runs under a
    service manager, which keeps stdout and stderr in one journal). Never as markup: file
    names and contract ids are not rich's to interpret."""
    if out.is_terminal:
        out.print(message, style=style, highlight=False, markup=False, soft_wrap=True)
    else:
        log.info("%s", message)


def _follow_events(path: Path, stop: threading.Event) -> None:
    """Print what the ClientApp did, as it writes it (refusals and failures: counts only)."""
    position = path.stat().st_size if path.exists() else 0
    while not stop.wait(0.5):
        if not path.exists() or path.stat().st_size <= position:
            continue
        with path.open() as fh:
            fh.seek(position)
            lines = fh.readlines()
            position = fh.tell()
        for line in lines:
            try:
                event = FactoryEvent.model_validate_json(line)
            except ValueError:
                continue
            bad = event.event in (EventKind.REFUSED, EventKind.FAILED)
            _say(event.describe(), "red" if bad else None)


def _pin_key(path: Path, pem: str) -> None:
    """Trust the hub's key on first join; refuse if it changes afterwards."""
    if path.exists():
        if path.read_text() != pem:
            typer.secho(
                f"error: the hub's signing key changed (pinned in {path}); if the park "
                "rotated it on purpose, delete that file and join again",
                fg="red",
                err=True,
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
    warm: Annotated[
        bool,
        typer.Option(
            "--warm/--cold",
            help="Run each round's ClientApp in a fork of a worker that has Flower and torch "
            "loaded (seconds faster per message), or in a new process as Flower does.",
        ),
    ] = True,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            envvar="FEDPARK_TOKEN_FILE",
            help="A file holding this factory's API token (mode 0600); or set FEDPARK_TOKEN.",
        ),
    ] = None,
    delimiter: DelimiterOpt = None,
    decimal: DecimalOpt = None,
    encoding: EncodingOpt = None,
    hub: HubOpt = None,
    token: Annotated[str | None, typer.Option("--token", hidden=True)] = None,
) -> None:
    """Start this factory's Flower SuperNode for the hub's federation, and keep it running.

    The API token comes from --token-file (or FEDPARK_TOKEN_FILE), or FEDPARK_TOKEN; never
    from the command line, which every user of the machine can read for as long as the
    factory runs (days).

    Only model updates and aggregate metrics leave. At start, the data is checked against
    every contract version your organization declared data under. Before each round the
    client checks that the run's contract carries the hub's signature and that the data meets
    it; data that breaks it is refused for that round (the hub hears the rule counts or what
    could not be read, never a value), and a round with fewer than the contract's k factories
    aggregates nothing. Each round trained or refused is printed here and in the log.
    """
    from fedpark.clients.supernode import (
        Supervisor,
        WarmClientApps,
        flower_env,
        supernode_argv,
    )

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not data.is_file():
        raise typer.BadParameter(f"{data} is not a file", param_hint="--data")
    if token is not None:
        raise typer.BadParameter(
            "a token on the command line is readable by every user of this machine for as "
            "long as the factory runs: put it in a file (--token-file) or FEDPARK_TOKEN",
            param_hint="--token",
        )
    token = read_token(token_file) if token_file else os.environ.get("FEDPARK_TOKEN")
    forced = csv_options(delimiter, decimal, encoding)
    work_dir = work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    with client(hub, token) as api:
        me = api.me()
        federation = api.federation()
        base_url = api.base_url
        _pin_key(work_dir / "hub-key.pem", federation.hub_key_pem)
        _check_declared(api, data, work_dir, forced)
    token_file = work_dir / "token"
    token_file.unlink(missing_ok=True)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:  # a file, so the token is not in the process list
        fh.write(token or "")
    node_config = NodeConfig(
        data_path=data.resolve(),
        hub_url=base_url,
        token_file=token_file,
        hub_key=work_dir / "hub-key.pem",
        org=me.organization.id,
        work_dir=work_dir,
        **NodeConfig.csv_fields(forced),  # the ClientApps read the file the same way
    )
    ca = None
    if federation.fleet_ca_pem:  # the park's own CA: TLS to the Fleet gate
        ca = work_dir / "fleet-ca.pem"
        _pin_key(ca, federation.fleet_ca_pem)
    auth_key = None
    if federation.node_auth:  # the SuperLink lets in only registered node keys
        auth_key = _node_key(client(hub, token), work_dir)
    argv = supernode_argv(federation.fleet_address, free_port(), node_config.flower(), ca, auth_key)
    supervisors: list[Supervisor] = []
    threads: list[threading.Thread] = []
    leaving = threading.Event()

    def supervise(supervisor: Supervisor) -> None:
        supervisors.append(supervisor)
        if leaving.is_set():  # Ctrl-C came first: it never starts
            supervisor.stop()
        threads.append(threading.Thread(target=supervisor.run, name=f"{supervisor.name} sup."))
        threads[-1].start()

    def leave(*_: object) -> None:
        leaving.set()
        for supervisor in supervisors:
            supervisor.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, leave)
    apps = WarmClientApps.create(work_dir) if warm else None
    if apps is not None:  # its launcher falls back to Flower's own while it is not up
        worker_log = work_dir / "clientapp-worker.log"
        env = flower_env(work_dir / "flwr")
        supervise(Supervisor(apps.worker_argv(), worker_log, env, "ClientApp worker"))
        # The SuperNode joins once the worker is warm: a message it took earlier would run
        # on Flower's cold path, slower than waiting for the worker (seconds of imports).
        with out.status("warming up the ClientApp worker (Flower and torch, imported once)"):
            if not apps.wait_ready(supervisors[0]):
                _say(f"the ClientApp worker is not up: see {worker_log}; rounds run cold", "yellow")
    if not leaving.is_set():  # Ctrl-C while warming up: never join
        supervise(Supervisor(argv, work_dir / "supernode.log", flower_env(work_dir / "flwr", apps)))
        _say(
            f"{me.organization.id} joined the federation at "
            f"{federation.fleet_address} (hub key {federation.hub_key_id}); "
            f"logs in {work_dir / 'supernode.log'}. Ctrl-C leaves."
        )
    stop_following = threading.Event()
    follower = threading.Thread(
        target=_follow_events,
        args=(work_dir / EVENTS_FILE, stop_following),
        name="clientapp-events",
        daemon=True,
    )
    follower.start()
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(0.5)
    stop_following.set()
    if apps is not None:
        apps.remove()
    _say("left the federation")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="factory")
