"""Hosts apart: a closed park across Linux network namespaces (tests/netns.py).

The namespace ``park`` runs the hub (its embedded storage, SQLite catalog and a metrics port
on loopback), `fedpark superlink serve` (TLS, node authentication) on loopback and the Fleet
gate on the park's address; each factory runs `fedpark factory join --token-file` in a
namespace of its own, on a veth into the park's private /24. From each factory every TCP port
listening in the park is probed: only the gate and the hub's public port answer. Then a full
experiment runs over TLS with node authentication and the model comes signed.

Root only (CI runs as root): skipped with the reason elsewhere, except where
FEDPARK_REQUIRE_NETNS=1 (CI sets it): there it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from federation import Hosts, run_experiment, start_park, supernode_pid
from harness import clean_env, fedpark_argv, free_port
from netns import Namespaces, NetnsUnavailableError

# A park's start and then a run waited for up to 300 s (federation.run_experiment): its
# own bound must be reached before pytest's 300 s default cuts the test off.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REQUIRED_ENV = "FEDPARK_REQUIRE_NETNS"
FACTORIES = ("acme", "bravo")

# Runs in a factory's namespace: a TCP connection to every port (must fail), the hub's
# /health over HTTP and a TLS handshake with the gate, trusting the park's CA (must succeed).
PROBE = r"""
import json, socket, ssl, sys, urllib.request
ask = json.loads(sys.argv[1])
host, answers = ask["host"], {}
for port in ask["closed"]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        answers[port] = "connected"
    except ConnectionRefusedError:
        answers[port] = "refused"
    except OSError as exc:
        answers[port] = repr(exc)
try:
    with urllib.request.urlopen(f"http://{host}:{ask['hub']}/health", timeout=10) as reply:
        answers["hub"] = reply.status
except OSError as exc:
    answers["hub"] = repr(exc)
context = ssl.create_default_context(cafile=ask["ca"])
try:
    with socket.create_connection((host, ask["gate"]), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            answers["gate"] = tls.version()
except OSError as exc:
    answers["gate"] = repr(exc)
print(json.dumps(answers))
"""


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    try:
        spaces = Namespaces.create(list(FACTORIES))
    except NetnsUnavailableError as exc:
        if os.environ.get(REQUIRED_ENV) == "1":
            pytest.fail(f"{exc} ({REQUIRED_ENV}=1: this test must run here)")
        pytest.skip(str(exc))
    try:
        yield spaces
    finally:
        spaces.remove()
    assert spaces.leftovers() == []


def test_factories_on_their_own_hosts_reach_only_the_gate_and_the_hub(
    namespaces: Namespaces, tmp_path: Path
) -> None:
    park_address = namespaces.address("park")
    metrics_port = free_port()
    hosts = Hosts(
        address=park_address,
        park=namespaces.exec("park"),
        factories={org: namespaces.exec(org) for org in FACTORIES},
    )
    park = start_park(
        tmp_path,
        None,  # the hub starts its embedded storage in the park's namespace
        factories=FACTORIES,
        rows=600,
        closed=True,
        hub_settings={"FEDPARK_METRICS_PORT": str(metrics_port)},
        hosts=hosts,
    )
    try:
        for org in FACTORIES:  # each SuperNode runs on its factory's host
            node = supernode_pid(tmp_path / org / "node", timeout=120)
            assert node in namespaces.pids(org), org

        gate = int(park.hub.env["FEDPARK_FLEET_ADDRESS"].rpartition(":")[2])
        listening = namespaces.listeners("park")
        others = {port: f"{proc} on {addr}" for addr, port, proc in listening}
        assert gate in others and park.hub.port in others, listening
        del others[gate], others[park.hub.port]
        # the ports the park must keep to itself are among them
        for port, what in [
            (park.federation.port, "the SuperLink's Control (and Fleet) API"),
            (_s3_port(namespaces), "the embedded storage's S3 API"),
            (metrics_port, "the hub's metrics port"),
        ]:
            assert port in others, (what, port, listening)
        # the catalog is SQLite, a file: there is no catalog port to reach
        assert "postgres" not in " ".join(others.values())

        ask = {
            "host": park_address,
            "closed": sorted(others),
            "hub": park.hub.port,
            "gate": gate,
            "ca": str(tmp_path / "pki" / "ca.pem"),
        }
        for org in FACTORIES:
            probe = subprocess.run(
                [*namespaces.exec(org), sys.executable, "-I", "-c", PROBE, json.dumps(ask)],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            answers = json.loads(probe.stdout)
            assert answers.pop("hub") == 200, (org, answers)
            assert answers.pop("gate") == "TLSv1.3", (org, answers)
            reached = {others[int(p)]: got for p, got in answers.items() if got != "refused"}
            assert reached == {}, f"{org} reached a port of the park's: {reached}"
        # only the hub and the gate listen on the park's address, the rest on loopback
        assert {port for addr, port, _ in listening if addr == park_address} == {
            gate,
            park.hub.port,
        }
        assert all(addr in ("127.0.0.1", "::1") for addr, _, _ in listening if addr != park_address)

        # A full experiment over TLS with node authentication, launched from this machine
        # through the hub's address; the model comes signed.
        state = run_experiment(park, "hosts apart", rounds=1)
        assert state["status"] == "finished", state
        download = subprocess.run(
            fedpark_argv("model", "download", state["id"], "-o", str(tmp_path / "model")),
            env=clean_env(FEDPARK_HUB=park.hub.url, FEDPARK_TOKEN=park.people["buyer"].token),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert download.returncode == 0 and "verified" in download.stdout, (
            download.stdout + download.stderr
        )
        # the factories trained through the gate, from their own addresses
        gate_log = (tmp_path / "gate.log").read_text()
        for org in FACTORIES:
            assert f"{namespaces.address(org)}:" in gate_log, (org, gate_log[-2000:])
    finally:
        park.stop()


def _s3_port(namespaces: Namespaces) -> int:
    """The S3 port of the embedded storage the hub started in the park's namespace."""
    for pid in namespaces.pids("park"):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for arg in argv:
            if arg.startswith(b"-s3.port="):
                return int(arg.split(b"=")[1])
    raise AssertionError("no embedded storage runs in the park's namespace")
