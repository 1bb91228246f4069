"""Security headers on every answer, and the hub over HTTPS."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from harness import HubProcess, Park, hub_env

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


def _certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signs for 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test park CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hub")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "hub.pem", folder / "hub.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def tls_hub(s3_server: EmbeddedS3, tmp_path: Path) -> Iterator[HubProcess]:
    ca, cert, key = _certificate(tmp_path)
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
