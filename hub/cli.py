"""The hub's command groups, added to ``fedpark`` through the ``fedpark.cli`` entry point."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

# Everything heavy is imported inside the commands: `fedpark --help` and the client
# commands must not pay for FastAPI, SQLAlchemy and uvicorn.
from fedpark.hub.errors import FedparkError
from fedpark.hub.flower.superlink import DEFAULT_PORT as DEFAULT_SUPERLINK_PORT

if TYPE_CHECKING:
    from fedpark.hub.settings import Settings

hub_app = typer.Typer(help="Run and maintain a FedPark hub.", no_args_is_help=True)
storage_app = typer.Typer(help="The embedded S3 server.", no_args_is_help=True)

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where the hub keeps its catalog, secrets and embedded storage "
        "(env FEDPARK_DATA_DIR; default ~/.local/share/fedpark).",
    ),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(code)


def _settings(**overrides: Any) -> Settings:
    """The hub's settings; one that cannot be used is named by its variable (or option), in
    FedPark's words, and exits 2."""
    from pydantic import ValidationError

    from fedpark.hub.settings import Settings

    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        said = [_setting_problem(e, overrides) for e in exc.errors()]
        raise _fail("; ".join(said)) from None
    return _beside_storage(settings)


def _beside_storage(settings: Settings) -> Settings:
    """A hub whose FEDPARK_S3_ENDPOINT is a `fedpark storage serve` on the same data dir
    (deploy/systemd/) takes that server's generated keys from there, when it is given none:
    no S3 secret is copied into an environment file."""
    identity = settings.data_dir / "s3-identity.json"
    if not settings.s3_endpoint or settings.s3_access_key or not identity.is_file():
        return settings
    from pydantic import SecretStr

    from fedpark.hub.storage.embedded import load_or_create_credentials

    keys = load_or_create_credentials(identity)
    return settings.model_copy(
        update={"s3_access_key": keys.access_key, "s3_secret_key": SecretStr(keys.secret_key)}
    )


def _setting_problem(error: Any, overrides: dict[str, Any]) -> str:
    from fedpark.contracts.messages import describe

    name = str(error["loc"][0]) if error["loc"] else "settings"
    given = f"--{name.replace('_', '-')}" if overrides.get(name) is not None else None
    return f"{given or 'FEDPARK_' + name.upper()}: {describe(error)}"


@hub_app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8470).")] = None,
    data_dir: DataDirOpt = None,
    with_superlink: Annotated[
        bool,
        typer.Option(
            "--with-superlink",
            help="Also start a Flower SuperLink for this hub (a single-server park): on "
            "loopback, its state in DATA_DIR/superlink; factories on other machines reach it "
            "through a Fleet gate on --host, port 9092.",
        ),
    ] = False,
    superlink_port: Annotated[
        int, typer.Option(help="The SuperLink's port with --with-superlink.")
    ] = DEFAULT_SUPERLINK_PORT,
) -> None:
    """Start the hub; with no S3 endpoint configured, also an embedded S3 server.

    Experiments need a Flower SuperLink: --with-superlink starts one beside the hub, or
    FEDPARK_SUPERLINK=host:port names one started with `fedpark superlink serve`.
    """
    settings = _settings(host=host, port=port, data_dir=data_dir)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from fedpark.hub.flower.superlink import SuperLinkConfig
    from fedpark.hub.server import serve_hub

    superlink = None
    if with_superlink:
        if settings.superlink:
            raise _fail("FEDPARK_SUPERLINK names a SuperLink already: drop --with-superlink")
        state = settings.data_dir / "superlink"
        superlink = SuperLinkConfig(
            state_dir=state,
            port=superlink_port,
            supernode_auth=settings.supernode_auth,
            # Registered node keys must outlive a restart; runs are resumed by the hub anyway.
            database=state / "state.db" if settings.supernode_auth else None,
        )
    try:
        serve_hub(settings, superlink)
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


@hub_app.command("check")
def check(data_dir: DataDirOpt = None) -> None:
    """Read back every stored object the catalog pins and report the missing or damaged.

    Reads everything (contracts, checkpoints, models) and changes nothing. Exit 1 if an object
    is missing or damaged. With embedded storage, run it while the hub is stopped (it starts
    the storage of the data dir itself); with an S3 server, any time.
    """
    from fedpark.hub.runtime import build_storage
    from fedpark.hub.server import embedded_storage_if_needed
    from fedpark.hub.services.integrity import check_stored_objects

    settings = _settings(data_dir=data_dir)
    try:
        with embedded_storage_if_needed(settings) as ready:
            storage = build_storage(ready)
            try:
                report = check_stored_objects(storage)
            finally:
                storage.close()
    except FedparkError as exc:
        raise _fail(str(exc)) from None
    size = f"{report.bytes / 2**20:.1f} MiB"
    if report.ok:
        typer.echo(f"all {report.checked} stored objects intact ({size} read)")
        return
    typer.echo(
        f"{len(report.missing)} missing and {len(report.damaged)} damaged of "
        f"{report.checked} stored objects ({size} read):"
    )
    for pinned in report.missing:
        typer.echo(f"  MISSING  {pinned.what}: {pinned.bucket}/{pinned.key}")
    for pinned in report.damaged:
        typer.echo(
            f"  DAMAGED  {pinned.what}: {pinned.bucket}/{pinned.key} "
            f"(expected sha256 {pinned.sha256})"
        )
    raise typer.Exit(1)


@hub_app.command("backup")
def backup(
    out: Annotated[Path, typer.Argument(help="A new folder for the backup.")],
    data_dir: DataDirOpt = None,
    include: Annotated[
        list[Path] | None,
        typer.Option(
            "--include", help="Also copy this file or folder, e.g. /etc/fedpark (repeatable)."
        ),
    ] = None,
) -> None:
    """Back the hub up: its catalog, its keys and its embedded storage's objects.

    SQLite is copied online, PostgreSQL with pg_dump. With embedded storage, stop the hub (or
    fedpark-storage) first: its files are copied as they are. An S3 server of its own is
    backed up with its own tools (docs/operations.md). Keep keys/ apart from the rest.
    """
    from fedpark.hub.backup import backup as make_backup

    settings = _settings(data_dir=data_dir)
    try:
        summary = make_backup(settings, out, include or ())
    except (FedparkError, OSError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"backed up to {summary.folder}: {summary.describe()}")


@hub_app.command("restore")
def restore(
    backup_dir: Annotated[Path, typer.Argument(help="A folder `fedpark hub backup` wrote.")],
    data_dir: DataDirOpt = None,
) -> None:
    """Restore a backup into an empty data dir (and an empty PostgreSQL database).

    Every file is checked against the backup's manifest first; nothing is replaced. Then
    start the hub: it migrates an older catalog; `fedpark hub check` and `fedpark audit
    verify` confirm the objects and the audit chain.
    """
    from fedpark.hub.backup import restore as put_back

    settings = _settings(data_dir=data_dir)
    try:
        summary = put_back(settings, backup_dir)
    except (FedparkError, OSError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"restored into {settings.data_dir}: {summary.describe()}")


@storage_app.command("serve")
def storage_serve(
    data_dir: DataDirOpt = None,
    port: Annotated[int | None, typer.Option(help="S3 port (default: a free one).")] = None,
) -> None:
    """Run the embedded S3 server alone until Ctrl-C."""
    from fedpark.hub.storage.embedded import EmbeddedS3

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
    from fedpark.hub.flower.cli import gate, pki_app, superlink_app

    hub_app.command("gate")(gate)
    app.add_typer(superlink_app, name="superlink")
    app.add_typer(hub_app, name="hub")
    app.add_typer(storage_app, name="storage")
    app.add_typer(pki_app, name="pki")
