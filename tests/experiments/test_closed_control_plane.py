"""The closed Flower control plane: the park's CA, a TLS SuperLink with node authentication,
and factories that reach only the Fleet gate.

A registered factory (its key uploaded through the hub by `fedpark factory join`) trains
through the gate; a factory-side request to a Control API path is refused by the gate; a
SuperNode whose key nobody registered is refused by the SuperLink.
"""

from __future__ import annotations

import os
import ssl
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from federation import BIN, run_experiment, start_park
from harness import clean_env, free_port

from fedpark.clients.processes import ChildProcess
from fedpark.hub.storage.embedded import EmbeddedS3

# A park's start and then a run waited for up to 300 s (federation.run_experiment): its
# own bound must be reached before pytest's 300 s default cuts the test off.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_factories_reach_only_the_fleet_api_and_only_registered_nodes_join(
    s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    park = start_park(tmp_path, s3_server, rows=600, closed=True)
    try:
        with park.hub.client(park.people["acme-op"].token) as factory:
            federation = factory.get("/federation").json()
        gate = federation["fleet_address"]
        assert federation["node_auth"] is True and "BEGIN CERTIFICATE" in federation["fleet_ca_pem"]
        trust = ssl.create_default_context(cafile=tmp_path / "pki" / "ca.pem")

        # Control paths are refused at the gate, however they are spelled.
        with httpx.Client(base_url=f"https://{gate}", verify=trust, timeout=10) as outside:
            for method, path in [
                ("POST", "/v1/control/list-runs"),
                ("POST", "/v1/control/stop-run"),
                ("POST", "/v1/control/register-node"),
                ("POST", "/v1/fleet/../control/list-runs"),
                ("POST", "/v1/fleet/%2e%2e/control/list-runs"),
                ("GET", "/"),
            ]:
                answer = outside.request(method, path, content=b"\x00")
                assert answer.status_code == 403, (path, answer.status_code, answer.text)
        with pytest.raises(httpx.ConnectError):  # nobody outside the park's CA is trusted
            httpx.get(f"https://{gate}/v1/fleet/get-run", timeout=5)

        # Registered factories train through the gate, over TLS.
        state = run_experiment(park, "closed plane")
        assert state["status"] == "finished", state
        for org in ("acme", "bravo"):
            assert (tmp_path / org / "node" / "node-key").stat().st_mode & 0o777 == 0o600

        # A SuperNode with a key nobody registered is refused by the SuperLink.
        key = tmp_path / "stranger-key"
        key.write_bytes(
            ec.generate_private_key(ec.SECP384R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
        )
        stranger = ChildProcess(
            [
                str(BIN / "flower-supernode"),
                "--root-certificates",
                str(tmp_path / "pki" / "ca.pem"),
                "--auth-supernode-private-key",
                str(key),
                "--superlink",
                gate,
                "--port",
                str(free_port()),
            ],
            tmp_path / "stranger.log",
            env=clean_env(
                FLWR_HOME=str(tmp_path / "stranger"),
                PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            ),
        ).start()
        deadline = time.monotonic() + 60
        while stranger.alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        alive = stranger.alive()
        stranger.stop()
        log = (tmp_path / "stranger.log").read_text()
        assert not alive, f"an unregistered SuperNode kept running:\n{log[-2000:]}"
        assert "Exit Code: 305" in log, log[-2000:]  # Flower: could not activate the node
        # ... because the SuperLink refused its key (its own TLS setup is the joins' one).
        assert '"POST /v1/fleet/activate-node HTTP/1.1" 412' in (tmp_path / "gate.log").read_text()
    finally:
        park.stop()
