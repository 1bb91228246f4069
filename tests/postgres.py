"""A real PostgreSQL server for the tests: Debian's binaries, a cluster of the tests' own.

The cluster lives in a temporary folder, listens on a free loopback port (and a socket in the
folder), trusts local connections, and is stopped and removed with the session. ``initdb``
refuses to run as root, so as root it runs as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness import free_port

REQUIRED_ENV = "FEDPARK_REQUIRE_POSTGRES"  # CI sets it: a missing server fails, not skips


def server_binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding a server, if any."""
    root = Path("/usr/lib/postgresql")
    majors = sorted(
        (p for p in root.glob("*/bin") if (p / "initdb").exists() and (p / "pg_ctl").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return majors[-1] if majors else None


@dataclass
class PostgresCluster:
    folder: Path
    binaries: Path
    port: int = 0

    def _run(self, *argv: str) -> None:
        command = [str(self.binaries / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    @classmethod
    def create(cls) -> PostgresCluster | None:
        """A new, initialized cluster in a folder of its own under the system's temp dir
        (pytest's are private to root: the server's user could not enter them)."""
        binaries = server_binaries()
        if binaries is None:
            return None
        folder = Path(tempfile.mkdtemp(prefix="fedpark-pg-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(folder, user.pw_uid, user.pw_gid)
        return cls(folder, binaries).init()

    def init(self) -> PostgresCluster:
        data = self.folder / "data"
        self._run("initdb", "-D", str(data), "-U", "fedpark", "--auth=trust", "-E", "UTF8")
        return self

    def start(self) -> PostgresCluster:
        self.port = self.port or free_port()
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = self.folder / "server.log"
        self._run(
            "pg_ctl", "-D", str(self.folder / "data"), "-o", options, "-l", str(log), "-w", "start"
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://fedpark@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"hub_{uuid.uuid4().hex[:12]}"
        dsn = f"host=127.0.0.1 port={self.port} user=fedpark dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # a generated name
        return self.url(name)

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
