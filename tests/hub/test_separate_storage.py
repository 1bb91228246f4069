"""The layout of deploy/systemd/: `fedpark storage serve` and `fedpark hub serve` as two
services on one data dir. The hub is told only the storage's address; it takes the keys the
storage generated from the data dir, so no S3 secret is written into an environment file."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest
from harness import HubProcess, clean_env, fedpark_argv, free_port

from fedpark.clients.processes import ChildProcess

pytestmark = pytest.mark.integration


def test_a_hub_beside_its_storage_service(tmp_path: Path) -> None:
    port = free_port()
    storage = ChildProcess(
        fedpark_argv("storage", "serve", "--data-dir", str(tmp_path), "--port", str(port)),
        tmp_path / "storage.log",
        env=clean_env(),
    ).start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert storage.alive(), storage.log_tail(20)
                assert time.monotonic() < deadline, storage.log_tail(20)
                time.sleep(0.2)
        env = clean_env(FEDPARK_S3_ENDPOINT=f"127.0.0.1:{port}")
        hub = HubProcess(tmp_path, env).start()
        try:
            health = httpx.get(f"{hub.url}/health").json()
            assert health["storage"]["status"] == "up"
            log = hub.log.read_text()
            assert "embedded S3 storage" not in log  # it uses the storage service's
            secret = (tmp_path / "s3-identity.json").read_text()
            assert '"secretKey"' in secret
        finally:
            assert hub.stop() == 0
        # A backup copies the storage's files as they are: not while the service runs.
        refused = subprocess.run(
            fedpark_argv("hub", "backup", str(tmp_path / "b"), "--data-dir", str(tmp_path)),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert refused.returncode == 2 and "fedpark-storage" in refused.stderr
    finally:
        storage.stop()


def test_given_keys_win(tmp_path: Path) -> None:
    """Keys set in the environment are used as they are (an S3 server of its own)."""
    from fedpark.hub.cli import _settings

    (tmp_path / "s3-identity.json").write_text(
        '{"identities": [{"credentials": [{"accessKey": "beside", "secretKey": "s"}]}]}'
    )
    beside = _settings(data_dir=tmp_path, s3_endpoint="127.0.0.1:1")
    assert beside.s3_access_key == "beside"
    assert beside.s3_secret_key is not None and beside.s3_secret_key.get_secret_value() == "s"
    given = _settings(
        data_dir=tmp_path, s3_endpoint="127.0.0.1:1", s3_access_key="k", s3_secret_key="t"
    )
    assert given.s3_access_key == "k"
    embedded = _settings(data_dir=tmp_path)  # no endpoint: the hub starts its own storage
    assert embedded.s3_access_key is None
