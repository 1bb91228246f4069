"""The factory's own checks, each against a real hub: the contract is trusted only with the
hub key pinned at the first join (a different key refuses it), an unavailable contract is
never half-cached, and `factory join` refuses a hub whose key changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness import (
    HubProcess,
    Park,
    add_member,
    add_org,
    clean_env,
    contract_in_state,
    fedpark_argv,
    hub_env,
)
from samples import sensor_table

from fedpark.contracts.ref import ContractRef
from fedpark.contracts.signing import public_key_pem
from fedpark.experiments.approved import (
    ContractNotVerifiedError,
    ContractUnavailableError,
    cache_folder,
    fetch_verified,
)
from fedpark.experiments.protocol.client import HubClient
from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration


def _pinned(park: Park, folder: Path) -> Path:
    key = folder / "hub-key.pem"
    with park.client("acme-factory") as client:
        key.write_bytes(client.get("/keys/hub").content)
    return key


def test_the_contract_is_trusted_with_the_pinned_key_only(park: Park, tmp_path: Path) -> None:
    data = contract_in_state(park, "approved")
    pinned = _pinned(park, tmp_path)
    stranger = tmp_path / "other-key.pem"
    stranger.write_bytes(public_key_pem(Ed25519PrivateKey.generate().public_key()))
    token = park.members["acme-factory"].token
    with HubClient(park.hub.url, token) as api:
        contract = fetch_verified(api, ContractRef(data["id"], "1.0.0"), tmp_path / "a", pinned)
        assert (contract.id, contract.version) == (data["id"], "1.0.0")
        # The same files, checked with a key the factory did not pin: refused.
        with pytest.raises(ContractNotVerifiedError):
            fetch_verified(api, ContractRef(data["id"], "1.0.0"), tmp_path / "a", stranger)
        # A version the hub does not hand out: refused with its status, nothing cached.
        with pytest.raises(ContractUnavailableError) as missing:
            fetch_verified(api, ContractRef(data["id"], "9.9.9"), tmp_path / "b", pinned)
    assert missing.value.status == 404
    assert not cache_folder(tmp_path / "b", ContractRef(data["id"], "9.9.9")).exists()


def test_a_cached_contract_altered_on_disk_is_refused(park: Park, tmp_path: Path) -> None:
    data = contract_in_state(park, "approved")
    pinned = _pinned(park, tmp_path)
    with HubClient(park.hub.url, park.members["acme-factory"].token) as api:
        fetch_verified(api, ContractRef(data["id"], "1.0.0"), tmp_path, pinned)
        document = cache_folder(tmp_path, ContractRef(data["id"], "1.0.0")) / "contract.json"
        document.write_text(document.read_text().replace('"max":120', '"max":900'))
        with pytest.raises(ContractNotVerifiedError):
            fetch_verified(api, ContractRef(data["id"], "1.0.0"), tmp_path, pinned)


def test_factory_join_refuses_a_hub_whose_key_changed(
    s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    # A hub that names a SuperLink (never reached here: join stops before it starts one).
    hub = HubProcess(tmp_path / "hub", hub_env(s3_server, FEDPARK_SUPERLINK="127.0.0.1:9"))
    hub.start()
    try:
        with hub.client(hub.admin_token) as admin:
            add_org(admin, "acme")
            factory = add_member(admin, "acme-op", "acme", "factory")
        joined = _join_with_a_stale_pin(hub.url, factory.token, tmp_path)
    finally:
        hub.stop()
    assert joined.returncode == 2, joined.stdout + joined.stderr
    assert "error: the hub's signing key changed" in joined.stderr
    assert "HTTP Request" not in joined.stderr  # FedPark's lines, not httpx's per request
    assert not (tmp_path / "node" / "supernode.log").exists()  # no SuperNode was started


def _join_with_a_stale_pin(
    url: str, token: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    data = tmp_path / "line.parquet"
    pq.write_table(sensor_table(rows=50), data)
    work = tmp_path / "node"
    work.mkdir()
    (work / "hub-key.pem").write_bytes(
        public_key_pem(Ed25519PrivateKey.generate().public_key())  # pinned at a first join
    )
    return subprocess.run(
        fedpark_argv("factory", "join", "--data", str(data), "--work-dir", str(work)),
        env=clean_env(FEDPARK_HUB=url, FEDPARK_TOKEN=token, COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
