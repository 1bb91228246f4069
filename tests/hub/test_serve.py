"""``fedpark hub serve``: zero-config start, clear failures, clean stop."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from harness import HubProcess, clean_env, fedpark_argv, free_port, pids_mentioning

from fedpark.hub.app import announce_bootstrap_token
from fedpark.hub.settings import Settings
from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration


def _weed_pids(data_dir: Path) -> list[int]:
    return pids_mentioning("weed", str(data_dir))


def test_serve_with_no_configuration(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path, clean_env())
    started = time.perf_counter()
    hub.start()
    try:
        cold_start = time.perf_counter() - started
        health = httpx.get(f"{hub.url}/health").json()
        assert health["status"] == "up"
        assert health["storage"]["status"] == health["catalog"]["status"] == "up"
        assert _weed_pids(tmp_path), "the embedded S3 server should run"
        log = hub.log.read_text()
        # Its output is a log file, not a terminal: the path of the token, never the token.
        assert "bootstrap-admin-token" in log and hub.admin_token not in log
        print(f"cold start of `fedpark hub serve`: {cold_start:.2f}s")
    finally:
        assert hub.stop() == 0
    assert _weed_pids(tmp_path) == [], "stopping the hub stops its storage"

    # A second start keeps the data and does not print a new token.
    token = hub.admin_token
    again = HubProcess(tmp_path, clean_env(), port=free_port()).start()
    try:
        with again.client(token) as admin:
            assert admin.get("/me").status_code == 200
    finally:
        again.stop()
    log = again.log.read_text()
    assert token not in log and log.count("First start") == 1  # only the first start's line


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty", [True, False])
def test_the_bootstrap_token_is_shown_only_on_a_terminal(
    tty: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = _Stream(tty)
    monkeypatch.setattr(sys, "stderr", stream)
    announce_bootstrap_token("fpk_secret", Settings(data_dir=tmp_path))
    assert ("fpk_secret" in stream.getvalue()) is tty
    assert str(tmp_path / "bootstrap-admin-token") in stream.getvalue()


def test_killed_hub_leaves_no_storage_behind(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path, clean_env()).start()
    assert hub.process is not None and hub.process.process is not None
    os.kill(hub.process.process.pid, 9)
    hub.process.process.wait()
    deadline = time.monotonic() + 15
    while _weed_pids(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _weed_pids(tmp_path) == []


def _serve_fails(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = fedpark_argv("hub", "serve", "--port", str(free_port()), "--data-dir", str(tmp_path))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_storage_down_at_start_is_a_clear_error(tmp_path: Path) -> None:
    result = _serve_fails(
        tmp_path,
        clean_env(
            FEDPARK_S3_ENDPOINT=f"127.0.0.1:{free_port()}",
            FEDPARK_S3_ACCESS_KEY="k",
            FEDPARK_S3_SECRET_KEY="s",
        ),
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: cannot reach object storage at http://127.0.0.1:")
    assert "Traceback" not in result.stderr


def test_wrong_s3_secret_is_a_clear_error(tmp_path: Path, s3_server: EmbeddedS3) -> None:
    result = _serve_fails(
        tmp_path,
        clean_env(
            FEDPARK_S3_ENDPOINT=s3_server.endpoint,
            FEDPARK_S3_ACCESS_KEY=s3_server.credentials.access_key,
            FEDPARK_S3_SECRET_KEY="wrong-secret-value",
        ),
    )
    assert result.returncode == 2
    assert "rejected the credentials" in result.stderr.strip().splitlines()[-1]
    assert "wrong-secret-value" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_storage_serve_runs_the_embedded_server_alone(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        fedpark_argv("storage", "serve", "--data-dir", str(tmp_path), "--port", str(port)),
        env=clean_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"S3 endpoint http://127.0.0.1:{port}" in line
        assert "secret" in line and "s3-identity.json" in line
        response = httpx.get(f"http://127.0.0.1:{port}/")
        assert response.status_code == 403  # a real S3 server: anonymous listing refused
    finally:
        process.terminate()
        assert process.wait(30) == 0
    assert _weed_pids(tmp_path) == []
