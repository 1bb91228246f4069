"""``fedpark superlink serve`` and ``hub serve --with-superlink``: a SuperLink configured for
the hub, whether or not the venv is activated; /health and the banner report it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from harness import HubProcess, clean_env, fedpark_argv, free_port, pids_mentioning

from fedpark.hub.errors import ConfigurationError, FlowerUnavailableError
from fedpark.hub.flower.control import FlowerControl
from fedpark.hub.flower.superlink import SuperLinkConfig, check_port_free
from fedpark.hub.server import bind_listener


def test_the_superlink_finds_flower_without_an_activated_venv(tmp_path: Path) -> None:
    config = SuperLinkConfig(tmp_path)
    scripts = str(Path(sys.executable).parent)
    assert config.argv()[0] == str(Path(scripts) / "flower-superlink")
    assert config.env()["PATH"].split(os.pathsep)[0] == scripts
    assert config.env()["FLWR_HOME"] == str(tmp_path / "flwr")
    assert "--disable-runtime-dependency-installation" in config.argv()
    assert "--insecure" in config.argv()  # loopback: plain HTTP is fine


def test_plain_http_on_a_network_address_needs_insecure(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="give the park's certificates"):
        SuperLinkConfig(tmp_path, host="10.1.2.3").check()
    SuperLinkConfig(tmp_path, host="10.1.2.3", insecure=True).check()
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(ConfigurationError, match="together"):
        SuperLinkConfig(tmp_path, host="10.1.2.3", ca_file=ca).check()
    tls = SuperLinkConfig(tmp_path, host="10.1.2.3", ca_file=ca, certfile=ca, keyfile=ca)
    tls.check()
    assert "--insecure" not in tls.argv() and "--ssl-certfile" in tls.argv()


def test_a_busy_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"port {port} on 127.0.0.1 is in use"):
            check_port_free("127.0.0.1", port, "the Flower SuperLink")
        with pytest.raises(ConfigurationError, match=f"port {port} is in use on 127.0.0.1"):
            bind_listener("127.0.0.1", port)


@pytest.mark.integration
def test_superlink_serve_with_a_bare_path(tmp_path: Path) -> None:
    """As an operator runs it from a service manager: the venv's `fedpark` by its full
    path, PATH without the venv (Flower alone dies looking for `flower-superexec`)."""
    port = free_port()
    env = clean_env(PATH="/usr/bin:/bin", HOME=str(tmp_path))
    argv = [
        str(Path(sys.executable).parent / "fedpark"),
        "superlink",
        "serve",
        "--data-dir",
        str(tmp_path),
        "--port",
        str(port),
    ]
    process = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        assert f"Flower SuperLink on http://127.0.0.1:{port}" in banner, banner
        assert process.stderr.readline().strip() == f"export FEDPARK_SUPERLINK=127.0.0.1:{port}"
        FlowerControl(f"127.0.0.1:{port}").check()  # its Control API answers
        # The same port again: a clear refusal, exit 2, no traceback.
        again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 2
        assert f"port {port} on 127.0.0.1 is in use" in again.stderr
        assert "Traceback" not in again.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    with pytest.raises(FlowerUnavailableError):
        FlowerControl(f"127.0.0.1:{port}").check(quiet=True)
    assert pids_mentioning("flower-superlink", f"--port\x00{port}") == []
    # Flower's state (runs, registered node keys) is on disk, to outlive a restart.
    assert (tmp_path / "superlink" / "state.db").exists()


@pytest.mark.integration
def test_hub_serve_with_superlink_reports_it(tmp_path: Path) -> None:
    link = free_port()
    options = ("--with-superlink", "--superlink-port", str(link))
    hub = HubProcess(tmp_path, clean_env(), extra=options)
    hub.start()
    try:
        health = httpx.get(f"{hub.url}/health").json()
        assert health["status"] == "up"
        assert health["superlink"] == {"status": "up", "detail": ""}
        banner = hub.log.read_text()
        assert (
            f"Flower SuperLink at 127.0.0.1:{link} answers; factories connect to "
            f"127.0.0.1:{link}" in banner
        )
    finally:
        assert hub.stop() == 0
    assert pids_mentioning("flower-superlink", f"--port\x00{link}") == []


@pytest.mark.integration
def test_health_without_and_with_a_dead_superlink(tmp_path: Path) -> None:
    off = HubProcess(tmp_path / "off", clean_env()).start()
    try:
        health = httpx.get(f"{off.url}/health").json()
        assert health["status"] == "up" and health["superlink"]["status"] == "off"
        assert "FEDPARK_SUPERLINK" in health["superlink"]["detail"]
        assert "Flower SuperLink: none, so experiments are off" in off.log.read_text()
    finally:
        off.stop()
    dead = HubProcess(
        tmp_path / "dead", clean_env(FEDPARK_SUPERLINK=f"127.0.0.1:{free_port()}")
    ).start()
    try:
        answer = httpx.get(f"{dead.url}/health")
        assert answer.status_code == 200  # the hub serves; experiments will not run
        assert answer.json()["status"] == "degraded"
        assert answer.json()["superlink"]["status"] == "down"
        assert "does NOT answer" in dead.log.read_text()
    finally:
        dead.stop()


@pytest.mark.integration
def test_hub_serve_on_a_busy_port_writes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "new-park"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            fedpark_argv("hub", "serve", "--port", str(port), "--data-dir", str(data_dir)),
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: port {port} is in use on 127.0.0.1: another hub (or another program) "
        "listens there; stop it, or start this one with --port"
    )
    assert "ready" not in result.stderr and "created" not in result.stderr
    assert not data_dir.exists(), "nothing started, nothing written"


@pytest.mark.integration
def test_hub_serve_with_a_busy_superlink_port_writes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "new-park"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        link = taken.getsockname()[1]
        argv = fedpark_argv(
            "hub", "serve", "--port", str(free_port()), "--data-dir", str(data_dir),
            "--with-superlink", "--superlink-port", str(link),
        )  # fmt: skip
        result = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: the Flower SuperLink: port {link} on 127.0.0.1 is in use (another process "
        "listens there); stop it or choose another port (--superlink-port)"
    )
    assert not data_dir.exists(), "no storage started, nothing written"
