"""End to end: S3, hub, SuperLink and two factory SuperNodes; a researcher trains, a partner
downloads the signed model, and nobody else sees it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from federation import Federation
from harness import (
    HubProcess,
    Member,
    add_member,
    add_org,
    clean_env,
    fedpark_argv,
    hub_env,
    new_contract,
)
from samples import sensor_table

from fedpark.clients.processes import ChildProcess
from fedpark.contracts import Contract, validate_table
from fedpark.contracts.signing import load_public_key, verify_document
from fedpark.experiments.weights import from_safetensors
from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration


def test_researcher_trains_partner_downloads_signed_model(
    s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    federation = Federation(tmp_path / "flwr").start_superlink()
    joins: list[ChildProcess] = []
    hub = HubProcess(
        tmp_path / "hub", hub_env(s3_server, FEDPARK_SUPERLINK=f"127.0.0.1:{federation.port}")
    )
    try:
        hub.start()
        with hub.client(hub.admin_token) as admin:
            for org, kind in (
                ("acme", "factory"),
                ("bravo", "factory"),
                ("tu", "university"),
                ("carmaker", "partner"),
                ("rival", "partner"),
            ):
                add_org(admin, org, kind)
            people: dict[str, Member] = {
                name: add_member(admin, name, org, role)
                for name, org, role in (
                    ("acme-op", "acme", "factory"),
                    ("bravo-op", "bravo", "factory"),
                    ("steward", "park-operator", "steward"),
                    ("alice", "tu", "researcher"),
                    ("buyer", "carmaker", "partner"),
                    ("spy", "rival", "partner"),
                    ("mallory", "rival", "researcher"),
                )
            }
        data = new_contract(
            "acme",
            policy={
                "experiment_orgs": ["tu"],
                "model_download_orgs": ["carmaker"],
                "min_factories": 2,
            },
        )
        base = f"/contracts/{data['id']}/versions/{data['version']}"
        with hub.client(people["acme-op"].token) as acme:
            assert acme.post("/contracts", json=data).status_code == 201
            acme.post(f"{base}/submit")
        with hub.client(people["steward"].token) as steward:
            assert steward.post(f"{base}/approve").json()["status"] == "approved"
        contract = Contract.model_validate(data)

        for i, (name, org) in enumerate((("acme-op", "acme"), ("bravo-op", "bravo"))):
            folder = tmp_path / org
            folder.mkdir()
            table = sensor_table(rows=1500, seed=10 + i)
            pq.write_table(table, folder / "line.parquet")
            result = validate_table(contract, table)
            with hub.client(people[name].token) as factory:
                declared = factory.post(
                    f"{base}/datasets",
                    json={
                        "name": "line",
                        "report": result.report.model_dump(mode="json"),
                        "profile": result.profile.model_dump(mode="json"),
                    },
                )
                assert declared.status_code == 201, declared.text
            joins.append(
                ChildProcess(
                    fedpark_argv(
                        "factory",
                        "join",
                        "--data",
                        str(folder / "line.parquet"),
                        "--work-dir",
                        str(folder / "node"),
                    ),
                    folder / "join.log",
                    env=clean_env(FEDPARK_HUB=hub.url, FEDPARK_TOKEN=people[name].token),
                ).start()
            )
        # A SuperNode that dies is brought back by `fedpark factory join`.
        first = _wait_for_supernode(tmp_path / "acme" / "node", avoid=None)
        os.kill(first, signal.SIGKILL)
        _wait_for_supernode(tmp_path / "acme" / "node", avoid=first)

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
            deadline = time.monotonic() + 300
            state = created.json()
            while state["status"] in ("pending", "running") and time.monotonic() < deadline:
                time.sleep(2)
                state = alice.get(f"/experiments/{experiment}").json()
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
        for process in joins:
            process.stop()
        hub.stop()
        federation.stop()


def _cli(hub: HubProcess, token: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(
        FEDPARK_HUB=hub.url, COLUMNS="200", **({"FEDPARK_TOKEN": token} if token else {})
    )
    return subprocess.run(
        fedpark_argv(*args), env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _cli_checks(hub: HubProcess, people: dict[str, Member], experiment: str, folder: Path) -> None:
    status = _cli(hub, people["alice"].token, "experiment", "status", experiment)
    assert status.returncode == 0 and "finished" in status.stdout and "acme" in status.stdout
    got = _cli(hub, people["buyer"].token, "model", "download", experiment, "-o", str(folder))
    assert got.returncode == 0 and "verified" in got.stdout, got.stdout + got.stderr
    offline = _cli(
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
    assert offline.returncode == 0 and "2 rounds" in offline.stdout
    weights = bytearray((folder / "model.safetensors").read_bytes())
    weights[-1] ^= 0x01
    (folder / "model.safetensors").write_bytes(bytes(weights))
    tampered = _cli(
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
    assert tampered.returncode == 1 and "NOT VERIFIED" in tampered.stdout


def _wait_for_supernode(work_dir: Path, avoid: int | None, timeout: float = 30) -> int:
    """The pid of the SuperNode started for ``work_dir`` (other than ``avoid``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == avoid:
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"flower-supernode" in cmdline and str(work_dir).encode() in cmdline:
                return int(proc.name)
        time.sleep(0.2)
    raise AssertionError(f"no SuperNode for {work_dir} within {timeout}s")
