"""The factory's own checks, each against a real hub: the contract is trusted only with the
hub key pinned at the first join (a different key refuses it), an unavailable contract is
never half-cached, and `factory join` refuses a hub whose key changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness import Park, clean_env, contract_in_state, fedpark_argv
from samples import sensor_table

from fedpark.clients.api import HubClient
from fedpark.clients.approved import (
    ContractNotVerifiedError,
    ContractUnavailableError,
    cache_folder,
    fetch_verified,
)
from fedpark.contracts.signing import public_key_pem

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
        contract = fetch_verified(api, data["id"], "1.0.0", tmp_path / "a", pinned)
        assert (contract.id, contract.version) == (data["id"], "1.0.0")
        # The same files, checked with a key the factory did not pin: refused.
        with pytest.raises(ContractNotVerifiedError):
            fetch_verified(api, data["id"], "1.0.0", tmp_path / "a", stranger)
        # A version the hub does not hand out: refused with its status, nothing cached.
        with pytest.raises(ContractUnavailableError) as missing:
            fetch_verified(api, data["id"], "9.9.9", tmp_path / "b", pinned)
    assert missing.value.status == 404
    assert not cache_folder(tmp_path / "b", data["id"], "9.9.9").exists()


def test_a_cached_contract_altered_on_disk_is_refused(park: Park, tmp_path: Path) -> None:
    data = contract_in_state(park, "approved")
    pinned = _pinned(park, tmp_path)
    with HubClient(park.hub.url, park.members["acme-factory"].token) as api:
        fetch_verified(api, data["id"], "1.0.0", tmp_path, pinned)
        document = cache_folder(tmp_path, data["id"], "1.0.0") / "contract.json"
        document.write_text(document.read_text().replace('"max":120', '"max":900'))
        with pytest.raises(ContractNotVerifiedError):
            fetch_verified(api, data["id"], "1.0.0", tmp_path, pinned)


def test_factory_join_refuses_a_hub_whose_key_changed(park: Park, tmp_path: Path) -> None:
    data = tmp_path / "line.parquet"
    pq.write_table(sensor_table(rows=50), data)
    work = tmp_path / "node"
    work.mkdir()
    (work / "hub-key.pem").write_bytes(
        public_key_pem(Ed25519PrivateKey.generate().public_key())  # pinned at a first join
    )
    joined = subprocess.run(
        fedpark_argv("factory", "join", "--data", str(data), "--work-dir", str(work)),
        env=clean_env(
            FEDPARK_HUB=park.hub.url,
            FEDPARK_TOKEN=park.members["acme-factory"].token,
            COLUMNS="200",
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert joined.returncode == 2, joined.stdout + joined.stderr
    assert "the hub's signing key changed" in joined.stdout
    assert not (work / "supernode.log").exists()  # no SuperNode was started
