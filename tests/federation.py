"""A real Flower deployment on loopback for the tests: one SuperLink, N SuperNodes."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flwr.common.serde import fab_to_proto, user_config_to_proto
from flwr.proto.control_pb2 import (
    ListRunsRequest,
    StartRunRequest,
    StopRunRequest,
)
from flwr.supercore.control import ControlHttpClient
from flwr.supercore.fab import Fab
from harness import (
    HubProcess,
    Member,
    add_member,
    add_org,
    clean_env,
    fedpark_argv,
    free_port,
    hub_env,
    new_contract,
    pids_mentioning,
)
from proxy import RecordingProxy
from samples import sensor_table

from fedpark.clients.launcher import FALLBACK_ENV, SOCKET_ENV
from fedpark.clients.processes import ChildProcess
from fedpark.clients.supernode import WarmClientApps, flower_env, wait_for_nodes
from fedpark.contracts import Contract, canonical_json, validate_table
from fedpark.contracts.signing import approval_payload, public_key_pem, sign_document
from fedpark.experiments.protocol import SPEC_KEY
from fedpark.hub.flower.control import build_fab
from fedpark.hub.storage.embedded import EmbeddedS3

BIN = Path(sys.executable).parent


def write_contract_dir(contract: Contract, key: Ed25519PrivateKey, folder: Path) -> Path:
    """What `fedpark contract download` writes for an approved contract."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "contract.json").write_bytes(canonical_json(contract))
    payload = approval_payload(contract, "steward", "park-operator", datetime.now(UTC), "test")
    (folder / "signature.json").write_text(json.dumps(sign_document(payload, key)))
    (folder / "hub-key.pem").write_bytes(public_key_pem(key.public_key()))
    return folder


@dataclass(frozen=True)
class Hosts:
    """Where a park's processes run (``start_park``): by default all on this machine's
    loopback. ``address`` is where the hub and the Fleet gate listen and the factories (and
    the tests) reach them; ``park`` prefixes the hub's, the SuperLink's and the gate's command
    lines and ``factories[org]`` a factory's (``ip netns exec NAME``: tests/netns.py)."""

    address: str = "127.0.0.1"
    park: tuple[str, ...] = ()
    factories: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class Federation:
    home: Path
    port: int = field(default_factory=free_port)
    processes: list[ChildProcess] = field(default_factory=list)
    warm: list[WarmClientApps] = field(default_factory=list)
    prefix: tuple[str, ...] = ()  # the SuperLink's command line runs through it

    def env(self, name: str) -> dict[str, str]:
        return clean_env(
            FLWR_HOME=str(self.home / name),
            FLWR_DISABLE_UPDATE_CHECK="1",
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # flower-superexec
        )

    def start_superlink(self, pki: Path | None = None) -> Federation:
        """Plain HTTP, or with ``pki`` (a folder from ``fedpark pki``) TLS with the park's
        certificate and node authentication on. With a ``prefix`` it is `fedpark superlink
        serve` (as an operator starts it) on the prefixed host's loopback."""
        if self.prefix:
            argv = fedpark_argv(
                "superlink",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.home),
                "--in-memory",
            )
            if pki is not None:
                argv += ["--ca", str(pki / "ca.pem"), "--certfile", str(pki / "superlink.pem")]
                argv += ["--keyfile", str(pki / "superlink.key"), "--supernode-auth"]
            log = self.home / "superlink-serve.log"
            process = ChildProcess([*self.prefix, *argv], log, env=self.env("superlink"))
            self.processes.append(process.start())
            return self
        security = ["--insecure"]
        if pki is not None:
            security = [
                "--ssl-ca-certfile",
                str(pki / "ca.pem"),
                "--ssl-certfile",
                str(pki / "superlink.pem"),
                "--ssl-keyfile",
                str(pki / "superlink.key"),
                "--enable-supernode-auth",
            ]
        argv = [
            str(BIN / "flower-superlink"),
            *security,
            # Runs and nodes in a database file: a restarted SuperLink still knows them.
            "--database",
            str(self.home / "superlink-state.db"),
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

    def add_node(self, name: str, config: dict[str, str], warm: bool = False) -> ChildProcess:
        """A SuperNode; with ``warm``, its ClientApps fork from a warm worker, as under
        ``fedpark factory join``."""
        pairs = " ".join(f'{k}="{v}"' for k, v in config.items())
        env = self.env(name)
        if warm:
            apps = WarmClientApps.create(self.home / name)
            self.warm.append(apps)
            worker = ChildProcess(apps.worker_argv(), self.home / f"{name}-worker.log", env=env)
            self.processes.append(worker.start())
            launcher_env = flower_env(self.home / name, apps)
            env |= {k: launcher_env[k] for k in (SOCKET_ENV, FALLBACK_ENV, "PATH")}
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
        node = ChildProcess(argv, self.home / f"{name}.log", env=env).start()
        self.processes.append(node)
        return node

    def control(self) -> ControlHttpClient:
        return ControlHttpClient.from_server_address(
            server_address=f"127.0.0.1:{self.port}",
            insecure=True,
            root_certificates=None,
            interceptors=[],
        )

    def wait_for_nodes(self, count: int, timeout: float = 90) -> None:
        """Until ``count`` SuperNodes are online: a run started earlier samples the nodes
        that happen to be connected (on a busy machine, not every factory yet)."""
        online = wait_for_nodes(f"127.0.0.1:{self.port}", count, timeout)
        if online < count:
            raise TimeoutError(f"{online} of {count} SuperNodes online after {timeout}s")

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
        for apps in self.warm:
            apps.remove()


@dataclass
class ParkSetup:
    """A hub driving a SuperLink, with factories joined through `fedpark factory join`."""

    hub: HubProcess
    federation: Federation
    people: dict[str, Member]
    contract: dict[str, Any]
    joins: dict[str, ChildProcess] = field(default_factory=dict)
    # With ``record=True``: everything factories send to the Fleet API and to the hub.
    fleet_proxy: RecordingProxy | None = None
    hub_proxy: RecordingProxy | None = None
    gate: ChildProcess | None = None
    # With ``report_proxy=True``: the hub's public URL, which the ServerApp reports to.
    report_proxy: RecordingProxy | None = None

    def stop(self) -> None:
        for process in self.joins.values():
            process.stop()
        if self.gate is not None:
            self.gate.stop()
        self.hub.stop()
        self.federation.stop()
        for proxy in (self.fleet_proxy, self.hub_proxy, self.report_proxy):
            if proxy is not None:
                proxy.close()


def start_park(
    tmp: Path,
    s3: EmbeddedS3,
    factories: tuple[str, ...] = ("acme", "bravo"),
    rows: int = 1500,
    prepare: Callable[[str, pa.Table], pa.Table] | None = None,
    record: bool = False,
    closed: bool = False,
    hub_settings: dict[str, str] | None = None,
    write: Callable[[str, pa.Table, Path], Path] | None = None,
    columns: list[dict[str, Any]] | None = None,
    report_proxy: bool = False,
    hosts: Hosts | None = None,
) -> ParkSetup:
    """Orgs, people, an approved contract owned by the first factory, declared data, joins.

    People: ``<factory>-op`` (factory), ``steward``, ``alice`` (researcher at tu, allowed by
    the policy), ``buyer`` (partner at carmaker, allowed), ``spy`` and ``mallory`` (rival).
    ``prepare(org, table)`` may change a factory's rows before they are written. With ``record``
    the factories reach the Fleet API and the hub only through recording proxies (the hub
    tells them the proxy's Fleet address), so every byte a factory sends is captured. With
    ``closed`` the control plane is closed as in production: the park's CA (``fedpark pki``),
    a TLS SuperLink with node authentication, and factories reaching only the Fleet gate.
    ``hub_settings`` adds ``FEDPARK_*`` settings to the hub's environment. ``write(org, table,
    folder)`` writes a factory's file and returns its path (what it joins with; the table is
    what it declares); ``columns`` replaces the contract's columns. With ``report_proxy`` the
    hub's public URL (where the ServerApp reports) is a counting proxy in front of it.
    ``hosts`` says where the processes run (``s3`` None: the hub starts its own storage);
    with it, factories join with a ``--token-file``.
    """
    hosts = hosts or Hosts()
    pki = _park_pki(tmp / "pki", hosts.address) if closed else None
    federation = Federation(tmp / "flwr", prefix=hosts.park).start_superlink(pki)
    env = {"FEDPARK_SUPERLINK": f"127.0.0.1:{federation.port}", **(hub_settings or {})}
    gate = None
    if pki is not None:  # factories reach only the Fleet gate, over TLS, with node keys
        gate_port = free_port()
        gate = _start_gate(pki, federation.port, gate_port, tmp / "gate.log", hosts)
        env |= {
            "FEDPARK_FLEET_ADDRESS": f"{hosts.address}:{gate_port}",
            "FEDPARK_FLOWER_CA_FILE": str(pki / "ca.pem"),
            "FEDPARK_SUPERNODE_AUTH": "true",
        }
    fleet_proxy = hub_proxy = None
    if record:
        fleet_proxy = RecordingProxy(("127.0.0.1", federation.port))
        env["FEDPARK_FLEET_ADDRESS"] = fleet_proxy.address
    hub = HubProcess(tmp / "hub", hub_env(s3, **env), host=hosts.address, prefix=hosts.park)
    if hosts.address != "127.0.0.1":  # where the ServerApp reports: the hub's own address
        hub.env["FEDPARK_PUBLIC_URL"] = hub.url
    reports = None
    if report_proxy:  # the ServerApp reaches the hub through it (the hub's public URL)
        reports = RecordingProxy(("127.0.0.1", hub.port))
        hub.env["FEDPARK_PUBLIC_URL"] = f"http://{reports.address}"
    if record:
        hub_proxy = RecordingProxy(("127.0.0.1", hub.port))
    factory_hub_url = f"http://{hub_proxy.address}" if hub_proxy else hub.url
    park = ParkSetup(
        hub,
        federation,
        {},
        {},
        fleet_proxy=fleet_proxy,
        hub_proxy=hub_proxy,
        gate=gate,
        report_proxy=reports,
    )
    try:
        hub.start(timeout=120)  # a loaded machine (CI) may take its time
        orgs = [(f, "factory") for f in factories]
        orgs += [("tu", "university"), ("carmaker", "partner"), ("rival", "partner")]
        roles = [(f"{f}-op", f, "factory") for f in factories] + [
            ("steward", "park-operator", "steward"),
            ("alice", "tu", "researcher"),
            ("buyer", "carmaker", "partner"),
            ("spy", "rival", "partner"),
            ("mallory", "rival", "researcher"),
        ]
        with hub.client(hub.admin_token) as admin:
            for org, kind in orgs:
                add_org(admin, org, kind)
            park.people = {name: add_member(admin, name, org, role) for name, org, role in roles}
        data = new_contract(
            factories[0],
            policy={
                "experiment_orgs": ["tu"],
                "model_download_orgs": ["carmaker"],
                "min_factories": 2,
            },
            **({"columns": columns} if columns is not None else {}),
        )
        park.contract = data
        base = f"/contracts/{data['id']}/versions/{data['version']}"
        with hub.client(park.people[f"{factories[0]}-op"].token) as owner:
            assert owner.post("/contracts", json=data).status_code == 201
            owner.post(f"{base}/submit")
        with hub.client(park.people["steward"].token) as steward:
            assert steward.post(f"{base}/approve").json()["status"] == "approved"
        contract = Contract.model_validate(data)
        for i, org in enumerate(factories):
            folder = tmp / org
            folder.mkdir()
            table = sensor_table(rows=rows, seed=10 + i)
            if prepare is not None:
                table = prepare(org, table)
            if write is None:
                path = folder / "line.parquet"
                pq.write_table(table, path)
            else:
                path = write(org, table, folder)
            result = validate_table(contract, table)
            token = park.people[f"{org}-op"].token
            with httpx.Client(  # through the recording proxy too, when there is one
                base_url=f"{factory_hub_url}/api/v1",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            ) as factory:
                declared = factory.post(
                    f"{base}/datasets", json=result.declaration("line").model_dump(mode="json")
                )
                assert declared.status_code == 201, declared.text
            argv = fedpark_argv(
                "factory", "join", "--data", str(path), "--work-dir", str(folder / "node")
            )
            join_env = clean_env(FEDPARK_HUB=factory_hub_url, FEDPARK_TOKEN=token)
            if org in hosts.factories:  # on a host of its own, its token in a file
                token_file = folder / "token"
                token_file.write_text(token)
                token_file.chmod(0o600)
                argv = [*hosts.factories[org], *argv, "--token-file", str(token_file)]
                join_env = clean_env(FEDPARK_HUB=factory_hub_url)
            park.joins[org] = ChildProcess(argv, folder / "join.log", env=join_env).start()
        # Every factory online before a test launches: `factory join` starts its SuperNode
        # once its warm worker is up, and a run samples only the nodes connected then. (A
        # closed park's control API speaks TLS only; its tests run as many factories as k,
        # and Flower waits for k nodes by itself.)
        if pki is None:
            federation.wait_for_nodes(len(factories), timeout=180)
    except BaseException:
        park.stop()
        raise
    return park


def _park_pki(folder: Path, gate_host: str = "127.0.0.1") -> Path:
    for argv in (
        ["pki", "init", "--dir", str(folder)],
        ["pki", "issue", "superlink", "--host", "127.0.0.1", "--dir", str(folder)],
        ["pki", "issue", "gate", "--host", gate_host, "--dir", str(folder)],
    ):
        subprocess.run(fedpark_argv(*argv), check=True, capture_output=True, env=clean_env())
    return folder


def _start_gate(pki: Path, superlink: int, port: int, log: Path, hosts: Hosts) -> ChildProcess:
    argv = fedpark_argv(
        "hub",
        "gate",
        "--superlink",
        f"127.0.0.1:{superlink}",
        "--host",
        hosts.address,
        "--port",
        str(port),
        "--ca",
        str(pki / "ca.pem"),
        "--certfile",
        str(pki / "gate.pem"),
        "--keyfile",
        str(pki / "gate.key"),
    )
    gate = ChildProcess([*hosts.park, *argv], log, env=clean_env()).start()
    context = ssl.create_default_context(cafile=pki / "ca.pem")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"https://{hosts.address}:{port}/", verify=context, timeout=2)
            return gate
        except httpx.TransportError:
            time.sleep(0.2)
    gate.stop()
    raise RuntimeError(f"the Fleet gate did not start:\n{gate.log_tail(30)}")


def supernode_pid(work_dir: Path, avoid: int | None = None, timeout: float = 30) -> int:
    """The pid of the SuperNode started for ``work_dir`` (other than ``avoid``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # `fedpark factory join` runs Flower's SuperNode as fedpark.clients.node
        found = [p for p in pids_mentioning("fedpark.clients.node", str(work_dir)) if p != avoid]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no SuperNode for {work_dir} within {timeout}s")


def launch_body(park: ParkSetup, name: str, rounds: int = 2) -> dict[str, Any]:
    """A small experiment on the park's contract with both sample factories."""
    return {
        "name": name,
        "contract_id": park.contract["id"],
        "contract_version": park.contract["version"],
        "participants": ["acme", "bravo"],
        "model": {"kind": "mlp", "hidden": [16]},
        "rounds": rounds,
        "min_factories": 2,
        "round_timeout": 120,
    }


def run_experiment(park: ParkSetup, name: str, rounds: int = 2) -> dict[str, Any]:
    """Launch as the park's researcher and wait for the end; the final state."""
    with park.hub.client(park.people["alice"].token) as alice:
        created = alice.post("/experiments", json=launch_body(park, name, rounds))
        assert created.status_code == 201, created.text
        return wait_for_experiment(alice, created.json()["id"], timeout=300)


def wait_for_experiment(client: httpx.Client, experiment: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = client.get(f"/experiments/{experiment}").json()
    while state["status"] in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(2)
        state = client.get(f"/experiments/{experiment}").json()
    return state
