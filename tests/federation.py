"""A real Flower deployment on loopback for the tests: one SuperLink, N SuperNodes."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flwr.common.serde import fab_to_proto, user_config_to_proto
from flwr.proto.control_pb2 import ListRunsRequest, StartRunRequest, StopRunRequest
from flwr.supercore.control import ControlHttpClient
from flwr.supercore.fab import Fab
from harness import clean_env, free_port

from fedpark.clients.processes import ChildProcess
from fedpark.contracts import Contract, canonical_json
from fedpark.contracts.signing import approval_payload, public_key_pem, sign_document
from fedpark.hub.flower import SPEC_KEY, build_fab

BIN = Path(sys.executable).parent


def write_contract_dir(contract: Contract, key: Ed25519PrivateKey, folder: Path) -> Path:
    """What `fedpark contract download` writes for an approved contract."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "contract.json").write_bytes(canonical_json(contract))
    payload = approval_payload(contract, "steward", "park-operator", datetime.now(UTC), "test")
    (folder / "signature.json").write_text(json.dumps(sign_document(payload, key)))
    (folder / "hub-key.pem").write_bytes(public_key_pem(key.public_key()))
    return folder


@dataclass
class Federation:
    home: Path
    port: int = field(default_factory=free_port)
    processes: list[ChildProcess] = field(default_factory=list)

    def env(self, name: str) -> dict[str, str]:
        return clean_env(
            FLWR_HOME=str(self.home / name),
            FLWR_DISABLE_UPDATE_CHECK="1",
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # flower-superexec
        )

    def start_superlink(self) -> Federation:
        argv = [
            str(BIN / "flower-superlink"),
            "--insecure",
            "--disable-runtime-dependency-installation",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.processes.append(
            ChildProcess(argv, self.home / "superlink.log", env=self.env("superlink")).start()
        )
        return self

    def add_node(self, name: str, config: dict[str, str]) -> ChildProcess:
        pairs = " ".join(f'{k}="{v}"' for k, v in config.items())
        argv = [
            str(BIN / "flower-supernode"),
            "--insecure",
            "--superlink",
            f"127.0.0.1:{self.port}",
            "--port",
            str(free_port()),
            "--node-config",
            pairs,
        ]
        node = ChildProcess(argv, self.home / f"{name}.log", env=self.env(name)).start()
        self.processes.append(node)
        return node

    def control(self) -> ControlHttpClient:
        return ControlHttpClient.from_server_address(
            server_address=f"127.0.0.1:{self.port}",
            insecure=True,
            root_certificates=None,
            interceptors=[],
        )

    def start_run(self, spec: dict[str, Any]) -> int:
        data, digest = build_fab()
        request = StartRunRequest(
            fab=fab_to_proto(Fab(digest, data, {})),
            override_config=user_config_to_proto({SPEC_KEY: json.dumps(spec)}),
        )
        deadline = time.monotonic() + 30
        while True:  # the SuperLink may still be starting
            try:
                return int(self.control().StartRun(request).run_id)
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def wait(self, run_id: int, timeout: float) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.control().ListRuns(ListRunsRequest(run_id=run_id)).run_dict[run_id]
            if run.status.status == "finished":
                return run.status.status, run.status.sub_status
            time.sleep(1)
        self.control().StopRun(StopRunRequest(run_id=run_id))
        raise TimeoutError(f"run {run_id} did not finish in {timeout}s")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
