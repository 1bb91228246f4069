"""Backing a hub up and restoring it: its catalog, its keys and its embedded storage's objects.

A backup is a folder (mode 0700)::

    manifest.json         what was backed up, from where, and the sha256 of every file
    catalog/catalog.db    SQLite's online backup of the catalog, or
    catalog/catalog.dump  ``pg_dump --format=custom`` of a PostgreSQL catalog
    keys/                 the hub's signing key, the audit key, the embedded storage's
                          credentials, the first admin's token (0600)
    objects/s3-data/      the embedded storage's own files (SeaweedFS), version ids and all
    extra/N-NAME          copies of --include paths (/etc/fedpark: settings, the park's PKI)

The objects are copied as SeaweedFS keeps them, not through S3: the catalog pins each object
by its version id, which a copy through S3 (``mc mirror``) would not keep. So the embedded
storage must be stopped while its files are copied; an S3 server of its own (MinIO) is backed
up with that server's tools (docs/operations.md). The keys sit in a folder of their own
because whoever holds both them and the catalog can rewrite the audit history: keep them
apart (docs/security.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import URL, make_url

from fedpark.hub.errors import FedparkError
from fedpark.hub.settings import Settings
from fedpark.hub.storage import Catalog
from fedpark.hub.version import __version__

MANIFEST = "manifest.json"
FORMAT = 1
# Files of the data dir that are secrets: copied into keys/ and back, 0600.
KEY_FILES = ("audit.key", "s3-identity.json", "bootstrap-admin-token")
SIGNING_KEY = "hub-signing-key.pem"
OBJECTS = "s3-data"  # the embedded storage's folder in the data dir (hub.storage.embedded)


class BackupError(FedparkError):
    """A backup or a restore that cannot be made as asked; nothing was changed."""


@dataclass(frozen=True)
class Summary:
    folder: Path
    catalog: str  # "sqlite" or "postgresql"
    revision: str | None  # the catalog's Alembic revision
    keys: list[str]
    objects: bool  # the embedded storage's files are in it
    files: int
    bytes: int

    def describe(self) -> str:
        objects = "the embedded storage's objects" if self.objects else "no objects (S3 server)"
        return (
            f"{self.catalog} catalog (revision {self.revision}), keys {', '.join(self.keys)}, "
            f"{objects}; {self.files} files, {self.bytes / 2**20:.1f} MiB"
        )


def backup(settings: Settings, out: Path, include: Sequence[Path] = ()) -> Summary:
    """Write a backup of the hub ``settings`` describe into the new folder ``out``."""
    data = settings.data_dir
    objects = data / OBJECTS
    if objects.is_dir() and (pids := storage_pids(objects)):
        raise BackupError(
            f"the embedded storage of {data} is running (pid {', '.join(map(str, pids))}): "
            "stop the hub (and fedpark-storage) first; its files are copied as they are"
        )
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: back up into a new folder")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    out.chmod(0o700)
    url = make_url(settings.catalog_url)
    catalog = out / "catalog"
    catalog.mkdir(mode=0o700)
    if url.get_backend_name() == "sqlite":
        _sqlite_copy(_sqlite_path(url), catalog / "catalog.db")
    else:
        _postgres(
            ["pg_dump", "--format=custom", "--no-owner", "--file"], url, catalog / "catalog.dump"
        )
    revision = _revision(settings.catalog_url)
    keys = out / "keys"
    keys.mkdir(mode=0o700)
    for source in [settings.signing_key_path, *(data / name for name in KEY_FILES)]:
        if source.is_file():
            name = SIGNING_KEY if source == settings.signing_key_path else source.name
            shutil.copy2(source, keys / name)
            (keys / name).chmod(0o600)
    if objects.is_dir():
        shutil.copytree(objects, out / "objects" / OBJECTS, symlinks=True)
    extras = {}
    for number, path in enumerate(include, 1):
        target = out / "extra" / f"{number}-{path.name}"
        target.parent.mkdir(mode=0o700, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, target, symlinks=True)
        else:
            shutil.copy2(path, target)
        extras[target.name] = str(path.resolve())
    files = {str(p.relative_to(out)): _sha256(p) for p in _files(out)}
    manifest = {
        "format": FORMAT,
        "fedpark": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data_dir": str(data),
        "catalog": url.get_backend_name(),
        "revision": revision,
        "objects": "embedded" if objects.is_dir() else "an S3 server of its own: not here",
        "extra": extras,
        "files": files,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return _summary(out, manifest)


def restore(settings: Settings, folder: Path) -> Summary:
    """Put the backup in ``folder`` back into the empty data dir (and empty catalog) that
    ``settings`` describe. Every file is checked against the manifest before anything is
    written. The hub migrates the catalog when it starts, should the backup be older."""
    manifest = _checked_manifest(folder)
    data = settings.data_dir
    url = make_url(settings.catalog_url)
    if url.get_backend_name() != manifest["catalog"]:
        raise BackupError(
            f"the backup holds a {manifest['catalog']} catalog and the hub is set up for "
            f"{url.get_backend_name()} (FEDPARK_DATABASE_URL)"
        )
    targets = {
        SIGNING_KEY: settings.signing_key_path,
        **{name: data / name for name in KEY_FILES},
    }
    keys = [name for name in targets if (folder / "keys" / name).is_file()]
    taken = [targets[name] for name in keys if targets[name].exists()]
    if (data / OBJECTS).exists():
        taken.append(data / OBJECTS)
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and _sqlite_path(url).exists():
        taken.append(_sqlite_path(url))
    if taken:
        raise BackupError(
            "restore into an empty data dir; move these aside first: "
            + ", ".join(str(path) for path in taken)
        )
    if not sqlite and _has_tables(settings.catalog_url):
        raise BackupError(f"the catalog {Catalog(settings.catalog_url).display_url} has tables")
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in keys:
        targets[name].parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / "keys" / name, targets[name])
        targets[name].chmod(0o600)
    if (folder / "objects" / OBJECTS).is_dir():
        shutil.copytree(folder / "objects" / OBJECTS, data / OBJECTS, symlinks=True)
    if sqlite:
        path = _sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / "catalog" / "catalog.db", path)
        path.chmod(0o600)
    else:
        dump = folder / "catalog" / "catalog.dump"
        _postgres(
            ["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction"], url, dump
        )
    return _summary(folder, manifest)


def storage_pids(objects: Path) -> list[int]:
    """Live ``weed`` processes serving ``objects`` (the embedded storage's folder)."""
    needle = f"-dir={objects}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if needle in argv:
                pids.append(int(proc.name))
    return pids


def _checked_manifest(folder: Path) -> dict[str, object]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        raise BackupError(f"{folder} holds no readable {MANIFEST}: not a FedPark backup") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{folder}: a backup of format {manifest.get('format')}, not {FORMAT}")
    problems = []
    for name, sha256 in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif _sha256(path) != sha256:
            problems.append(f"{name} is not the file backed up")
    if problems:
        raise BackupError(f"the backup in {folder} is damaged: " + "; ".join(problems))
    return dict(manifest)


def _summary(folder: Path, manifest: dict[str, object]) -> Summary:
    files = manifest["files"]
    assert isinstance(files, dict)
    return Summary(
        folder=folder,
        catalog=str(manifest["catalog"]),
        revision=str(manifest["revision"]) if manifest["revision"] else None,
        keys=sorted(p.name for p in (folder / "keys").iterdir()),
        objects=manifest["objects"] == "embedded",
        files=len(files),
        bytes=sum((folder / name).stat().st_size for name in files),
    )


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _sqlite_path(url: URL) -> Path:
    if not url.database:
        raise BackupError("the SQLite catalog is in memory: nothing to back up")
    return Path(url.database)


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy, also while the hub writes."""
    if not source.is_file():
        raise BackupError(f"no catalog at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    target.chmod(0o600)


def _revision(catalog_url: str) -> str | None:
    catalog = Catalog(catalog_url)
    try:
        with catalog.engine.connect() as connection:
            row = connection.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        return str(row[0]) if row else None
    finally:
        catalog.dispose()


def _has_tables(catalog_url: str) -> bool:
    catalog = Catalog(catalog_url)
    try:
        return bool(inspect(catalog.engine).get_table_names())
    finally:
        catalog.dispose()


def _postgres(argv: list[str], url: URL, file: Path) -> None:
    """``pg_dump`` or ``pg_restore`` on the catalog's database. The connection goes in
    libpq's variables, never the command line: its password would be in the process list."""
    binary = shutil.which(argv[0]) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{argv[0]}"))[::-1]),
        None,
    )
    if binary is None:
        raise BackupError(f"{argv[0]} is missing: install PostgreSQL's client (postgresql-client)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    given = {
        "PGHOST": url.host or url.query.get("host"),
        "PGPORT": str(url.port) if url.port else url.query.get("port"),
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": url.database,
        "PGSSLMODE": url.query.get("sslmode"),
    }
    env.update({k: str(v) for k, v in given.items() if v})
    tail = [str(file)] if argv[0] == "pg_dump" else ["--dbname", url.database or "", str(file)]
    result = subprocess.run(
        [binary, *argv[1:], *tail], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        # pg_dump's own words name the server and the table, never the password.
        raise BackupError(f"{argv[0]} failed: {result.stderr.strip()[-600:]}")
