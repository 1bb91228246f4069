"""End to end: S3, hub, SuperLink and two factory SuperNodes; a researcher trains, a partner
downloads the signed model, and nobody else sees it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from federation import start_park, supernode_pid, wait_for_experiment
from harness import (
    HubProcess,
    Member,
    clean_env,
    fedpark_argv,
)

from fedpark.contracts.signing import load_public_key, verify_document
from fedpark.experiments.weights import from_safetensors
from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration


def test_researcher_trains_partner_downloads_signed_model(
    s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    park = start_park(tmp_path, s3_server)
    hub, people, data = park.hub, park.people, park.contract
    try:
        # A SuperNode that dies is brought back by `fedpark factory join`.
        first = supernode_pid(tmp_path / "acme" / "node")
        os.kill(first, signal.SIGKILL)
        supernode_pid(tmp_path / "acme" / "node", avoid=first)

        launch = {
            "name": "press faults",
            "contract_id": data["id"],
            "contract_version": data["version"],
            "participants": ["acme", "bravo"],
            "model": {"kind": "mlp", "hidden": [16]},
            "rounds": 2,
            "min_factories": 2,
            "round_timeout": 120,
        }
        with hub.client(people["mallory"].token) as mallory:
            assert mallory.post("/experiments", json=launch).status_code == 403  # not in policy
        with hub.client(people["alice"].token) as alice:
            assert (
                alice.post("/experiments", json={**launch, "min_factories": 1}).status_code == 422
            )
            created = alice.post("/experiments", json=launch)
            assert created.status_code == 201, created.text
            experiment = created.json()["id"]
            state = wait_for_experiment(alice, experiment, timeout=300)
            assert state["status"] == "finished", state
            rounds = alice.get(f"/experiments/{experiment}/rounds").json()
        assert [r["round"] for r in rounds] == [1, 2]
        assert {f["org"] for f in rounds[1]["report"]["train_factories"]} == {"acme", "bravo"}
        assert all(r["checkpoint_sha256"] for r in rounds)

        with hub.client(people["buyer"].token) as buyer:
            model = buyer.get(f"/models/{experiment}").json()
            weights = buyer.get(f"/models/{experiment}/weights").content
            manifest = buyer.get(f"/models/{experiment}/manifest").content
            signature = buyer.get(f"/models/{experiment}/signature").json()
            key = load_public_key(buyer.get("/keys/hub").content)
        payload = verify_document(signature, key)
        assert payload["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
        assert payload["weights_sha256"] == hashlib.sha256(weights).hexdigest()
        facts = json.loads(manifest)
        assert facts["contract"] == {
            "id": data["id"],
            "version": "1.0.0",
            "sha256": state["contract_sha256"],
        }
        assert [sorted(r["examples"]) for r in facts["rounds"]] == [["acme", "bravo"]] * 2
        assert (
            facts["strategy"]["name"] == "fedavg"
            and model["weights_sha256"] == payload["weights_sha256"]
        )
        assert from_safetensors(weights)
        _cli_checks(hub, people, experiment, tmp_path / "partner")
        for outsider in ("spy", "mallory"):
            with hub.client(people[outsider].token) as other:
                assert other.get(f"/models/{experiment}/weights").status_code == 404
                assert other.get(f"/experiments/{experiment}").status_code == 404
    finally:
        park.stop()
    _no_secret_in_any_log(tmp_path, [m.token for m in people.values()], s3_server)


def _no_secret_in_any_log(folder: Path, tokens: list[str], s3: EmbeddedS3) -> None:
    """Every log of the park (hub, SuperLink, SuperNodes, joins, ServerApp and ClientApps)
    after a full experiment: no API token, no run token, no S3 secret key."""
    logs = [p for p in folder.rglob("*.log") if p.is_file()]
    assert len(logs) >= 6, logs  # hub, SuperLink, 2 joins, 2 SuperNodes at least
    secrets = [*tokens, s3.credentials.secret_key]
    for log in logs:
        text = log.read_text(errors="replace")
        leaked = [s[:8] + "…" for s in secrets if s in text]
        assert leaked == [], f"{log}: {leaked}"
        # Token prefixes catch tokens this test does not know (run tokens, the admin's).
        assert "fpk_" not in text and "fprun_" not in text, log


def _cli(hub: HubProcess, token: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(
        FEDPARK_HUB=hub.url, COLUMNS="200", **({"FEDPARK_TOKEN": token} if token else {})
    )
    return subprocess.run(
        fedpark_argv(*args), env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _cli_checks(hub: HubProcess, people: dict[str, Member], experiment: str, folder: Path) -> None:
    status = _cli(hub, people["alice"].token, "experiment", "status", experiment)
    assert status.returncode == 0 and "finished" in status.stdout
    assert "2 (2400 examples)" in status.stdout  # both factories trained every round
    got = _cli(hub, people["buyer"].token, "model", "download", experiment, "-o", str(folder))
    assert got.returncode == 0 and "verified" in got.stdout, got.stdout + got.stderr

    def verify() -> subprocess.CompletedProcess[str]:  # offline: no token
        return _cli(
            hub,
            None,
            "model",
            "verify",
            str(folder / "model.safetensors"),
            str(folder / "manifest.json"),
            "--signature",
            str(folder / "manifest.sig.json"),
            "--key",
            str(folder / "hub-key.pem"),
        )

    offline = verify()
    assert offline.returncode == 0 and "2 rounds" in offline.stdout
    weights = bytearray((folder / "model.safetensors").read_bytes())
    weights[-1] ^= 0x01
    (folder / "model.safetensors").write_bytes(bytes(weights))
    tampered = verify()
    assert tampered.returncode == 1 and "NOT VERIFIED" in tampered.stdout
