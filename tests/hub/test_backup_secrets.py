"""`fedpark hub backup` runs pg_dump and pg_restore with the catalog's connection in libpq's
variables: its password never reaches a command line, which every user of the machine sees."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from fedpark.hub import backup


@pytest.mark.parametrize("program", ["pg_dump", "pg_restore"])
def test_the_password_stays_off_the_command_line(
    program: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.update(argv=argv, env=kwargs["env"])
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(backup.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(backup.subprocess, "run", run)
    monkeypatch.setenv("PGPASSWORD", "from-the-caller")  # never passed on
    url = make_url("postgresql+psycopg://hub:s3cr3t-pw@db.park:5433/catalog?sslmode=require")
    backup._postgres([program], url, tmp_path / "catalog.dump")
    assert not any("s3cr3t-pw" in arg for arg in seen["argv"])
    assert seen["env"]["PGPASSWORD"] == "s3cr3t-pw"
    assert (seen["env"]["PGHOST"], seen["env"]["PGPORT"]) == ("db.park", "5433")
    assert (seen["env"]["PGUSER"], seen["env"]["PGDATABASE"]) == ("hub", "catalog")
    assert seen["env"]["PGSSLMODE"] == "require"


def test_a_socket_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The URL docs/operations.md uses: peer authentication on PostgreSQL's socket."""
    seen: dict[str, Any] = {}

    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.update(env=kwargs["env"])
        return subprocess.CompletedProcess(argv, 1, "", "pg_dump: error: connection failed")

    monkeypatch.setattr(backup.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(backup.subprocess, "run", run)
    url = make_url("postgresql+psycopg://fedpark@/fedpark?host=/var/run/postgresql")
    with pytest.raises(backup.BackupError, match="pg_dump failed: pg_dump: error"):
        backup._postgres(["pg_dump"], url, tmp_path / "catalog.dump")
    assert seen["env"]["PGHOST"] == "/var/run/postgresql"
    assert "PGPASSWORD" not in seen["env"]
