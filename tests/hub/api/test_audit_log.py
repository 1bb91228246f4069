"""Every state-changing request writes exactly one audit record; tampering is detected."""

from __future__ import annotations

import sqlite3
import subprocess
import uuid

import pytest
from harness import HubProcess, Park, fedpark_argv, hub_env

from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration


def _head(park: Park) -> int:
    with park.client("operator") as admin:
        return int(admin.get("/audit/verify").json()["head_seq"])


def _records_after(park: Park, seq: int) -> list[dict[str, object]]:
    with park.client("operator") as admin:
        return list(admin.get("/audit", params={"after_seq": seq, "limit": 1000}).json())


def test_one_record_per_state_changing_request(park: Park) -> None:
    before = _head(park)
    mark = uuid.uuid4().hex[:8]  # this test's requests, whatever else writes meanwhile
    ids = [f"req-{mark}-{i}" for i in range(5)]
    with park.client("acme-admin") as admin:
        created = admin.post(
            "/users",
            json={"username": f"audited-{mark}", "org_id": "acme", "role": "steward"},
            headers={"X-Request-ID": ids[0]},
        )
        denied = admin.post(
            "/organizations",
            json={"id": "nope", "name": "n", "kind": "other"},
            headers={"X-Request-ID": ids[1]},
        )
        invalid = admin.post(
            "/users",
            json={"username": "X!", "org_id": "acme", "role": "?"},
            headers={"X-Request-ID": ids[2]},
        )
        admin.get("/users", headers={"X-Request-ID": ids[3]})  # reads are not recorded
    with park.hub.client() as anonymous:
        unauthenticated = anonymous.post(
            "/tokens", json={"name": "x"}, headers={"X-Request-ID": ids[4]}
        )
    records = [r for r in _records_after(park, before) if r["request_id"] in ids]
    assert [r["status_code"] for r in records] == [201, 403, 422, 401]
    first = records[0]
    assert first["request_id"] == created.headers["x-request-id"] == ids[0]
    assert (first["actor"], first["actor_org"]) == ("acme-admin", "acme")
    assert (first["action"], first["object"], first["outcome"]) == (
        "user.create",
        f"user:audited-{mark}@acme",
        "success",
    )
    assert records[1]["outcome"] == "denied" and records[1]["action"] == "organization.create"
    assert denied.status_code == 403 and invalid.status_code == 422
    assert records[3]["actor"] == "anonymous" and unauthenticated.status_code == 401
    assert all(r["at"] for r in records)


def test_tampering_is_detected_through_the_api_and_the_cli(
    s3_server: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A hub of its own: this test breaks its chain on purpose.
    hub = HubProcess(tmp_path_factory.mktemp("tamper"), hub_env(s3_server)).start()
    try:
        with hub.client(hub.admin_token) as admin:
            for org in ("t1", "t2", "t3"):
                admin.post("/organizations", json={"id": org, "name": org, "kind": "other"})
            assert admin.get("/audit/verify").json()["ok"] is True
            env = {**hub.env, "FEDPARK_HUB": hub.url, "FEDPARK_TOKEN": hub.admin_token}
            ok = subprocess.run(
                fedpark_argv("audit", "verify"),
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert ok.returncode == 0, ok.stderr
            assert "intact: 3 records" in ok.stdout

            with sqlite3.connect(hub.data_dir / "catalog.db") as db:
                db.execute("UPDATE audit_log SET object = 'organization:x' WHERE seq = 2")
            report = admin.get("/audit/verify").json()
        assert report["ok"] is False
        assert any("record 2" in p for p in report["problems"])
        broken = subprocess.run(
            fedpark_argv("audit", "verify"), env=env, capture_output=True, text=True, check=False
        )
        assert broken.returncode == 1 and "BROKEN" in broken.stdout
        offline = subprocess.run(
            fedpark_argv("hub", "verify-audit", "--data-dir", str(hub.data_dir)),
            env=hub.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert offline.returncode == 1 and "record 2" in offline.stdout
    finally:
        hub.stop()
