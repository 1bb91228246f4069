"""Real components for the tests: a hub process over HTTP, and helpers to populate it."""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import socket
import ssl
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from fedpark.clients.processes import ChildProcess
from fedpark.contracts import Contract, contract_sha256, validate_table
from fedpark.experiments.protocol.plan import PublishRule
from fedpark.experiments.protocol.resources.experiments import ExperimentCreate
from fedpark.hub.services.tokens import hash_token
from fedpark.hub.storage import Catalog
from fedpark.hub.storage.embedded import EmbeddedS3
from fedpark.hub.storage.models import Experiment

ROLES = ("admin", "steward", "researcher", "factory", "partner")
# Who the access matrices try: the park operator's admin and a member of every role in acme.
CALLERS = ("operator", *(f"acme-{role}" for role in ROLES))


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


# Ports for the children the tests start (hubs, SuperLinks, SuperNodes, gates, PostgreSQL),
# handed out once each per session from below the kernel's ephemeral range. A port found by
# binding to 0 and released is one the kernel may give the next connection or bind of any
# process, and a later restart could be handed the same one: from here neither happens.
# Each pytest-xdist worker walks a stretch of its own, from a random start in it: sessions
# running side by side (.ci/each-file -j 2) walk different stretches too.
_PORT_FLOOR = 10_000


def _port_stretch() -> range:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    size = (_ephemeral_floor() - _PORT_FLOOR) // max(1, workers)
    low = _PORT_FLOOR + worker * size
    start = low + random.SystemRandom().randrange(max(1, size - 4_000))
    return range(start, low + size)


_PORTS = iter(_port_stretch())


def free_port() -> int:
    """A loopback port no other child of this test session was given, and nothing listens on
    now (checked by binding it), below the ephemeral range."""
    for port in _PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port left below the ephemeral range for this test session")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any FEDPARK_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDPARK_")}
    env.update(extra)
    return env


def hub_env(s3: EmbeddedS3 | None, **extra: str) -> dict[str, str]:
    """Settings for a hub on the tests' S3 server, with buckets of its own (``s3`` None: no
    endpoint, so the hub starts an embedded storage server of its own).

    Rate limits are off unless ``extra`` sets them: the tests make hundreds of calls a minute
    from one address, many with wrong tokens on purpose (tests/hub/api/test_rate_limits.py
    checks the limits on a hub of its own).
    """
    settings = {
        "FEDPARK_BUCKET_PREFIX": f"hub-{uuid.uuid4().hex[:8]}",
        "FEDPARK_AUTH_FAILURES_PER_MINUTE": "0",
        "FEDPARK_REQUESTS_PER_TOKEN_PER_MINUTE": "0",
    }
    if s3 is not None:
        settings |= {
            "FEDPARK_S3_ENDPOINT": s3.endpoint,
            "FEDPARK_S3_ACCESS_KEY": s3.credentials.access_key,
            "FEDPARK_S3_SECRET_KEY": s3.credentials.secret_key,
        }
    return clean_env(**(settings | extra))


def fedpark_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "fedpark.clients.cli", *args]


class PortTakenError(RuntimeError):
    pass


@dataclass
class HubProcess:
    """``fedpark hub serve`` in a child process."""

    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: ChildProcess | None = None
    ca: Path | None = None  # the CA that signed the hub's TLS certificate: serve HTTPS
    started_once: bool = False
    extra: tuple[str, ...] = ()  # more `hub serve` options
    host: str = "127.0.0.1"  # the address it binds and the tests reach it at
    prefix: tuple[str, ...] = ()  # runs `hub serve` through it (`ip netns exec NAME`)

    @property
    def url(self) -> str:
        return f"{'https' if self.ca else 'http'}://{self.host}:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.ca) if self.ca else True

    @property
    def log(self) -> Path:
        return self.data_dir / "hub-test.log"

    def start(self, timeout: float = 60) -> HubProcess:
        """Start and wait until healthy. A first start whose free port was taken meanwhile
        (found free, then bound by someone else) tries another; a restart keeps its port,
        which the factories know."""
        for _ in range(3):
            try:
                return self._start_once(timeout)
            except PortTakenError:
                if self.started_once:
                    raise
                self.port = free_port()
        raise RuntimeError("no free port for the hub after 3 tries")

    def _start_once(self, timeout: float) -> HubProcess:
        argv = fedpark_argv(
            "hub", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir), *self.extra
        )
        if self.host != "127.0.0.1":
            argv += ["--host", self.host]
        argv = [*self.prefix, *argv]
        self.process = ChildProcess(argv, self.log, env=self.env).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.alive():
                tail = self.process.log_tail(30)
                if "address already in use" in tail.lower() or " is in use on " in tail:
                    raise PortTakenError(tail)
                raise RuntimeError(f"hub exited during start:\n{tail}")
            try:
                health = httpx.get(f"{self.url}/health", timeout=2, verify=self.verify)
                if health.status_code == 200:
                    self.started_once = True
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"hub not healthy in {timeout}s:\n{self.process.log_tail(30)}")

    def stop(self) -> int | None:
        return self.process.stop() if self.process else None

    @property
    def database_url(self) -> str:
        return self.env.get("FEDPARK_DATABASE_URL") or f"sqlite:///{self.data_dir / 'catalog.db'}"

    @property
    def bucket_prefix(self) -> str:
        return self.env["FEDPARK_BUCKET_PREFIX"]

    def execute(self, sql: str, **params: Any) -> None:
        """Change the hub's catalog behind its back (SQLite or PostgreSQL), as time or an
        operator would."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.database_url)
        try:
            with engine.begin() as connection:
                connection.execute(text(sql), params)
        finally:
            engine.dispose()

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "bootstrap-admin-token").read_text().strip()

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(
            base_url=f"{self.url}/api/v1", headers=headers, timeout=30, verify=self.verify
        )


@dataclass
class Member:
    username: str
    org_id: str
    role: str
    user_id: str
    token: str
    token_id: str


@dataclass
class Park:
    hub: HubProcess
    operator: Member  # the park operator's admin
    members: dict[str, Member]  # "<org>-<role>", for orgs acme and bravo

    def client(self, who: str) -> httpx.Client:
        member = self.operator if who == "operator" else self.members[who]
        return self.hub.client(member.token)


def add_member(admin: httpx.Client, username: str, org_id: str, role: str) -> Member:
    """Create a user and a token for it through the API."""
    user = _ok(admin.post("/users", json={"username": username, "org_id": org_id, "role": role}))
    token = _ok(admin.post("/tokens", json={"name": "test", "user_id": user["id"]}))
    return Member(username, org_id, role, user["id"], token["token"], token["id"])


def add_org(admin: httpx.Client, org_id: str, kind: str = "factory") -> dict[str, Any]:
    return _ok(admin.post("/organizations", json={"id": org_id, "name": org_id, "kind": kind}))


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, f"{response.status_code}: {response.text}"
    return response.json()


def new_contract(owner: str = "acme", **changes: Any) -> dict[str, Any]:
    """The sample contract with a fresh id (and any top-level changes)."""
    from samples import contract_data

    data = contract_data()
    data.update({"id": f"c-{uuid.uuid4().hex[:10]}", "owner": owner, **changes})
    return data


def contract_in_state(
    park: Park, state: str, owner: str = "acme", **changes: Any
) -> dict[str, Any]:
    """A contract version brought to ``state`` through the API (authored by a factory);
    ``changes`` replace top-level fields of the sample contract (its policy, say)."""
    data = new_contract(owner, **changes)
    author = f"{owner}-factory"
    path = f"/contracts/{data['id']}/versions/{data['version']}"
    steps = {
        "draft": [],
        "submitted": [(author, "submit")],
        "approved": [(author, "submit"), ("acme-steward", "approve")],
        "deprecated": [
            (author, "submit"),
            ("acme-steward", "approve"),
            ("acme-steward", "deprecate"),
        ],
        "retired": [
            (author, "submit"),
            ("acme-steward", "approve"),
            ("acme-steward", "deprecate"),
            ("acme-steward", "retire"),
        ],
    }[state]
    with park.client(author) as client:
        _ok(client.post("/contracts", json=data))
    for who, action in steps:
        with park.client(who) as client:
            _ok(client.post(f"{path}/{action}"))
    return data


def pids_mentioning(*needles: str) -> list[int]:
    """Live processes whose command line contains every one of ``needles``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if all(n.encode() in cmdline for n in needles):
            pids.append(int(proc.name))
    return pids


def build_park(hub: HubProcess) -> Park:
    """Two factories with a member of every role, plus the park operator's admin."""
    with hub.client(hub.admin_token) as admin:
        for org in ("acme", "bravo"):
            add_org(admin, org)
        members = {
            f"{org}-{role}": add_member(admin, f"{org}-{role}", org, role)
            for org in ("acme", "bravo")
            for role in ROLES
        }
        me = admin.get("/me").json()
    operator = Member("admin", "park-operator", "admin", me["user"]["id"], hub.admin_token, "")
    return Park(hub=hub, operator=operator, members=members)


def _sha256(contract: dict[str, Any]) -> str:
    """The sha256 of a contract document; of a stand-in for a bare reference (id, version)."""
    if "columns" not in contract:
        return hashlib.sha256(b"doc").hexdigest()
    return contract_sha256(Contract.model_validate(contract))


def declare_sample(park: Park, data: dict[str, Any], org: str, *, compliant: bool = True) -> None:
    """``org``'s factory declares a sample line's data under contract version ``data``, as
    ``fedpark contract declare`` sends it: compliant (200 rows), or not (20 < min_rows)."""
    from samples import sensor_table

    table = sensor_table(rows=200 if compliant else 20, seed=len(org))
    result = validate_table(Contract.model_validate(data), table)
    assert result.report.passed == compliant
    body = {
        "name": "line",
        "report": result.report.model_dump(mode="json"),
        "profile": result.profile.model_dump(mode="json"),
    }
    path = f"/contracts/{data['id']}/versions/{data['version']}/datasets"
    with park.client(f"{org}-factory") as factory:
        assert factory.post(path, json=body).status_code == 201


def running_experiment(
    catalog: Catalog,
    contract: dict[str, Any],
    org: str,
    participants: list[str],
    *,
    name: str = "running",
    publish: PublishRule = "last",
    min_factories: int = 1,
) -> tuple[str, str]:
    """An experiment of ``org``'s researcher as a launch leaves it (running, a run token),
    written to the catalog without Flower: for tests of what the hub does after a launch.
    Returns its id and the run's token."""
    token = "fprun_" + secrets.token_urlsafe(32)
    experiment_id = f"exp-{uuid.uuid4().hex[:12]}"
    settings = ExperimentCreate(
        name=name,
        contract_id=contract["id"],
        contract_version=contract["version"],
        participants=participants,
        min_factories=min_factories,
        publish=publish,
    )
    with catalog.unit_of_work() as uow:
        uow.experiments.add(
            Experiment(
                id=experiment_id,
                name=name,
                contract_id=contract["id"],
                contract_version=contract["version"],
                contract_sha256=_sha256(contract),
                org_id=org,
                created_by=f"{org}-researcher",
                status="running",
                settings=settings,
                participants=participants,
                run_token_hash=hash_token(token),
            )
        )
    return experiment_id, token


def open_run(
    park: Park, contract: dict[str, Any], org: str, participants: list[str], **options: Any
) -> tuple[str, str]:
    """``running_experiment`` on the park's own catalog: an experiment of ``org`` running on
    ``contract`` as a launch leaves it; its id and run token."""
    catalog = Catalog(park.hub.database_url)
    try:
        return running_experiment(catalog, contract, org, participants, **options)
    finally:
        catalog.dispose()


def finish_body(contract: dict[str, Any], summary: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a run's ServerApp posts to finish: a summary and the package of a default model
    on ``contract``, as ``running_experiment`` launched it."""
    from samples import package_for

    from fedpark.experiments.protocol.resources.experiments import RunFinishCreate

    finish = RunFinishCreate(summary=summary or {}, package=package_for(contract))
    return finish.model_dump(mode="json")
