"""`fedpark hub backup` and `fedpark hub restore` (docs/operations.md): a hub with data is
backed up, its data dir (and PostgreSQL database) wiped, restored, and started again; its
people, tokens, contract, objects, keys and audit chain are all there."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from harness import HubProcess, build_park, clean_env, contract_in_state, fedpark_argv
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.integration


def _fedpark(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        fedpark_argv(*args), env=env, capture_output=True, text=True, timeout=180, check=False
    )


def _recreate(database_url: str) -> None:
    """Drop the hub's PostgreSQL database and create it again, empty: the server lost it."""
    import psycopg

    url = make_url(database_url)
    dsn = f"host={url.host} port={url.port} user={url.username} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')  # the test's own name
        connection.execute(f'CREATE DATABASE "{url.database}"')


def test_backup_wipe_restore(tmp_path: Path, database: dict[str, str]) -> None:
    data = tmp_path / "data"
    env = clean_env(**database)
    hub = HubProcess(data, env).start()
    try:
        park = build_park(hub)
        contract = contract_in_state(park, "approved")
        path = f"/contracts/{contract['id']}/versions/{contract['version']}"
        with park.client("operator") as admin:
            chain = admin.get("/audit/verify").json()
        assert chain["ok"] and chain["records"] > 10
        # Embedded storage's files are copied as they are: never while it serves them.
        running = _fedpark(
            "hub", "backup", str(tmp_path / "early"), "--data-dir", str(data), env=env
        )
        assert running.returncode == 2 and "is running" in running.stderr, running.stderr
        assert not (tmp_path / "early").exists()
    finally:
        assert hub.stop() == 0

    checked = _fedpark("hub", "check", "--data-dir", str(data), env=env)
    assert checked.returncode == 0 and "stored objects intact" in checked.stdout, checked.stderr
    signing_key = (data / "hub-signing-key.pem").read_bytes()
    audit_key = (data / "audit.key").read_bytes()
    etc = tmp_path / "etc-fedpark"
    etc.mkdir()
    (etc / "hub.env").write_text("FEDPARK_HOST=0.0.0.0\n")

    backup = tmp_path / "backup"
    made = _fedpark(
        "hub", "backup", str(backup), "--data-dir", str(data), "--include", str(etc), env=env
    )
    assert made.returncode == 0, made.stderr
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["objects"] == "embedded" and manifest["revision"]
    assert {"keys/hub-signing-key.pem", "keys/audit.key", "keys/s3-identity.json"} <= set(
        manifest["files"]
    )
    assert "extra/1-etc-fedpark/hub.env" in manifest["files"]
    assert all((backup / "keys" / name).stat().st_mode & 0o077 == 0 for name in ("audit.key",))
    # Nothing of the catalog or the keys is readable by others.
    assert backup.stat().st_mode & 0o077 == 0

    # A backup whose files changed since is refused, and nothing is written.
    damaged = tmp_path / "damaged"
    shutil.copytree(backup, damaged)
    (damaged / "keys" / "audit.key").write_text("00" * 32 + "\n")
    elsewhere = tmp_path / "elsewhere"
    refused = _fedpark("hub", "restore", str(damaged), "--data-dir", str(elsewhere), env=env)
    assert refused.returncode == 2 and "keys/audit.key is not the file" in refused.stderr
    assert not elsewhere.exists()

    # The server is lost: its data dir and its database.
    shutil.rmtree(data)
    if "FEDPARK_DATABASE_URL" in database:
        _recreate(database["FEDPARK_DATABASE_URL"])
    restored = _fedpark("hub", "restore", str(backup), "--data-dir", str(data), env=env)
    assert restored.returncode == 0, restored.stderr
    assert (data / "hub-signing-key.pem").read_bytes() == signing_key
    assert (data / "audit.key").read_bytes() == audit_key
    again = _fedpark("hub", "restore", str(backup), "--data-dir", str(data), env=env)
    assert again.returncode == 2 and "move these aside" in again.stderr, again.stderr

    checked_again = _fedpark("hub", "check", "--data-dir", str(data), env=env)
    assert checked_again.returncode == 0, checked_again.stdout + checked_again.stderr
    assert checked_again.stdout == checked.stdout  # the same count of objects, all intact

    hub = park.hub = HubProcess(data, env).start()
    try:
        with park.client("acme-steward") as steward:  # a token issued before the backup
            shown = steward.get(path)
            assert shown.status_code == 200, shown.text
            assert shown.json()["status"] == "approved"
            for part in ("document", "signature"):  # read back from the restored storage
                assert steward.get(f"{path}/{part}").status_code == 200, part
        verified = _fedpark(
            "audit",
            "verify",
            env=clean_env(FEDPARK_HUB=hub.url, FEDPARK_TOKEN=hub.admin_token),
        )
        assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout
        with park.client("operator") as admin:
            after = admin.get("/audit/verify").json()
        assert after["ok"] and after["records"] >= chain["records"]
    finally:
        assert hub.stop() == 0
