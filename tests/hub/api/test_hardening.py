"""Security headers on every answer, and the hub over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import HubProcess, Park, hub_env

from fedpark.hub.flower.pki import init_ca, issue
from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration


def test_api_answers_carry_security_headers(park: Park) -> None:
    with park.client("acme-factory") as client:
        for answer in (client.get("/me"), client.get("/contracts/nope/versions/1.0.0")):
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["cache-control"] == "no-store"
            assert answer.headers["content-security-policy"].startswith("default-src 'none'")
            assert "strict-transport-security" not in answer.headers  # plain HTTP here
    health = httpx.get(f"{park.hub.url}/health")
    assert health.headers["x-content-type-options"] == "nosniff"


@pytest.fixture
def tls_hub(s3_server: EmbeddedS3, tmp_path: Path) -> Iterator[HubProcess]:
    ca = init_ca(tmp_path / "pki")  # the park's own CA signs the hub's certificate too
    cert, key = issue(tmp_path / "pki", "hub", ["127.0.0.1"])
    env = hub_env(s3_server, FEDPARK_TLS_CERTFILE=str(cert), FEDPARK_TLS_KEYFILE=str(key))
    hub = HubProcess(tmp_path / "hub", env, ca=ca).start()
    yield hub
    hub.stop()


def test_the_hub_serves_https_with_its_certificate(tls_hub: HubProcess) -> None:
    assert tls_hub.url.startswith("https://")
    with tls_hub.client(tls_hub.admin_token) as admin:
        me = admin.get("/me")
    assert me.status_code == 200
    assert me.headers["strict-transport-security"] == "max-age=31536000"
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the park's CA
        httpx.get(f"{tls_hub.url}/health")
    with pytest.raises(httpx.TransportError):  # and no plain HTTP on the same port
        httpx.get(tls_hub.url.replace("https://", "http://") + "/health")
