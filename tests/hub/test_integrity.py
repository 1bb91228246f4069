"""Stored data that is missing or damaged is not an outage: the hub says so at once (500
``stored-data-damaged``, no Retry-After), logs an alert naming the object, and ``fedpark hub
check`` finds every such object the catalog pins."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
from harness import HubProcess, add_member, add_org, fedpark_argv, hub_env, new_contract
from minio import Minio

from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration


def test_missing_and_damaged_objects_are_reported_not_retried(
    s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    hub = HubProcess(tmp_path / "hub", hub_env(s3_server)).start()
    try:
        with hub.client(hub.admin_token) as admin:
            add_org(admin, "acme")
            author = add_member(admin, "acme-author", "acme", "factory")
        kept, lost, rotten = (new_contract("acme") for _ in range(3))
        with hub.client(author.token) as client:
            for data in (kept, lost, rotten):
                assert client.post("/contracts", json=data).status_code == 201
        catalog = sqlite3.connect(hub.data_dir / "catalog.db")
        with catalog:
            key, version = catalog.execute(
                "SELECT document_key, document_version_id FROM contract_versions "
                "WHERE contract_id = ?",
                (lost["id"],),
            ).fetchone()
            # Bit rot, as the hub would see it: the bytes no longer hash to the record.
            catalog.execute(
                "UPDATE contract_versions SET schema_sha256 = ? WHERE contract_id = ?",
                ("0" * 64, rotten["id"]),
            )
        catalog.close()
        bucket = hub.env["FEDPARK_BUCKET_PREFIX"] + "-contracts"
        raw = Minio(
            s3_server.endpoint,
            s3_server.credentials.access_key,
            s3_server.credentials.secret_key,
            secure=False,
        )
        raw.remove_object(bucket, key, version_id=version)  # a botched restore, say

        with hub.client(author.token) as client:
            gone = client.get(f"/contracts/{lost['id']}/versions/1.0.0/document")
            fine = client.get(f"/contracts/{kept['id']}/versions/1.0.0/document")
            damaged = client.get(f"/contracts/{rotten['id']}/versions/1.0.0/schema")
        assert fine.status_code == 200
        for answer in (gone, damaged):
            assert answer.status_code == 500, answer.text
            assert answer.json()["type"] == "urn:fedpark:problem:stored-data-damaged"
            assert "retry-after" not in answer.headers
        log = hub.log.read_text()
        assert "ALERT stored data missing or damaged" in log and key in log
        # the damaged one: its key and both hashes (the recorded one is all zeros)
        alert = next(line for line in log.splitlines() if rotten["id"] in line and "ALERT" in line)
        assert "does not match the recorded 0000000000000000" in alert, alert
        assert "transient storage error" not in log  # not retried as if it were an outage
    finally:
        hub.stop()

    checked = subprocess.run(
        fedpark_argv("hub", "check", "--data-dir", str(hub.data_dir)),
        env=hub.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 1, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert lines[0].startswith("1 missing and 1 damaged of 6 stored objects"), lines
    assert f"MISSING  contract {lost['id']} 1.0.0 document" in checked.stdout
    assert f"DAMAGED  contract {rotten['id']} 1.0.0 schema" in checked.stdout
    assert kept["id"] not in checked.stdout
