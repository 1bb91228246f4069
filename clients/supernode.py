"""Keep a factory's Flower SuperNode running: restart it with backoff when it exits."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fedpark.clients import launcher
from fedpark.clients.processes import ChildProcess

log = logging.getLogger(__name__)


# Seconds between a SuperExec's looks for a new task (Flower's default: 1).
TASK_POLL_INTERVAL = "0.1"
# Seconds `factory join` waits for its warm worker before starting the SuperNode anyway.
WORKER_READY_TIMEOUT = 120.0


def flower_env(
    home: Path, warm: WarmClientApps | None = None, *, superlink: bool = False
) -> dict[str, str]:
    """Environment for Flower processes: their own FLWR_HOME, no update checks, a SuperExec
    that looks for tasks every 100 ms, and this interpreter's scripts first on PATH (the
    SuperNode starts ``flwr-clientapp`` by name); with ``warm``, its launcher before them.

    A ``superlink``'s SuperExec keeps Flower's 1 s: it starts one ServerApp per run, and
    each of its looks costs the SuperLink a request (on two cores the SuperLink's requests
    are what a round waits for)."""
    scripts = [str(Path(sys.executable).parent)]
    env = {
        # Idle OpenMP threads sleep instead of spinning: a ClientApp that shares its cores
        # (other factories in a demo, the factory's own work) trains 5-10x faster, one
        # alone about as fast. An operator's own setting wins.
        "OMP_WAIT_POLICY": "PASSIVE",
        **os.environ,
        "FLWR_HOME": str(home),
        "FLWR_DISABLE_UPDATE_CHECK": "1",
    }
    if not superlink:
        env["FLWR_SUPEREXEC_TASK_POLL_INTERVAL"] = TASK_POLL_INTERVAL
    path = os.pathsep.join([*scripts, os.environ.get("PATH", "")])
    if warm is not None:
        # Flower's own command, as the SuperExec would find it without the launcher.
        flower = shutil.which("flwr-clientapp", path=path)
        env[launcher.FALLBACK_ENV] = flower or str(Path(scripts[0]) / "flwr-clientapp")
        env[launcher.SOCKET_ENV] = str(warm.socket)
        path = os.pathsep.join([str(warm.bin_dir), path])
    env["PATH"] = path
    return env


@dataclass(frozen=True)
class WarmClientApps:
    """Where a factory's warm ClientApp worker listens and its launcher lives.

    The socket is in a short private folder (Unix socket paths are limited to ~108 bytes);
    the launcher in the work dir's ``bin``, first on the SuperNode's PATH.
    """

    bin_dir: Path
    socket: Path

    @classmethod
    def create(cls, work_dir: Path) -> WarmClientApps:
        bin_dir = work_dir / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        script = bin_dir / "flwr-clientapp"
        source = Path(launcher.__file__).read_text()
        script.write_text(f"#!{sys.executable} -IS\n{source}")
        script.chmod(0o755)
        folder = Path(tempfile.mkdtemp(prefix="fpwarm-"))
        return cls(bin_dir, folder / "worker.sock")

    def remove(self) -> None:
        """The socket's private folder, once the worker is stopped."""
        shutil.rmtree(self.socket.parent, ignore_errors=True)

    def wait_ready(self, worker: Supervisor, timeout: float = WORKER_READY_TIMEOUT) -> bool:
        """Wait until the worker listens (it has preloaded), it exits, or ``timeout``; whether
        it is ready. A SuperNode started before would run its first messages cold."""
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if worker.restarts or worker.stopped or time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def worker_argv(self) -> list[str]:
        # -P: the folder `factory join` was started in is not on its module path
        return [sys.executable, "-P", "-m", "fedpark.clients.warm", str(self.socket)]


def local_superlink_argv(port: int) -> list[str]:
    """A SuperLink for one machine (the demo, benchmarks): insecure, on loopback, its state
    in memory (no ``--database``: Flower's SQL state costs ~7 s a round here,
    docs/experiments.md; a lost run is resumed by the hub from its last checkpoint)."""
    return [
        str(Path(sys.executable).parent / "flower-superlink"),
        "--insecure",
        "--disable-runtime-dependency-installation",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def supernode_argv(
    fleet: str,
    port: int,
    node_config: Mapping[str, str],
    root_certificates: Path | None = None,
    auth_key: Path | None = None,
) -> list[str]:
    pairs = " ".join(f'{key}="{value}"' for key, value in node_config.items())
    security = (
        ["--root-certificates", str(root_certificates)] if root_certificates else ["--insecure"]
    )
    if auth_key is not None:  # the SuperLink lets in only registered node keys
        security += ["--auth-supernode-private-key", str(auth_key)]
    return [
        # Flower's SuperNode, with an idle wait that follows the work (fedpark.clients.node);
        # -P: the folder `factory join` was started in is not on its module path
        sys.executable,
        "-P",
        "-m",
        "fedpark.clients.node",
        *security,
        "--superlink",
        fleet,
        "--port",
        str(port),
        "--node-config",
        pairs,
    ]


class Supervisor:
    """Runs ``argv`` until :meth:`stop`; restarts it after an exit, backing off to a minute.

    The SuperNode reconnects by itself after short network losses; this covers the rest
    (it gave up, crashed, or was killed). The warm ClientApp worker is kept the same way.
    """

    def __init__(
        self, argv: list[str], log_path: Path, env: dict[str, str], name: str = "SuperNode"
    ) -> None:
        self.argv, self.log_path, self.env, self.name = argv, log_path, env, name
        self.current: ChildProcess | None = None
        self.restarts = 0
        self._stop = threading.Event()

    def run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            self.current = ChildProcess(self.argv, self.log_path, env=self.env).start()
            assert self.current.process is not None
            while self.current.alive() and not self._stop.wait(0.5):
                pass
            if self._stop.is_set():
                break
            code = self.current.process.poll()
            if time.monotonic() - started > 60:
                delay = 1.0  # it ran a good while: this is a fresh failure
            log.warning("%s exited with code %s; restarting in %.0fs", self.name, code, delay)
            self.restarts += 1
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, 60.0)
        if self.current is not None:
            self.current.stop()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()


def wait_for_nodes(superlink: str, count: int, timeout: float = 120.0) -> int:
    """Wait until ``count`` SuperNodes are online at ``superlink``'s control API (plain
    HTTP, on the SuperLink's machine); how many are. A run started earlier samples the nodes
    that happen to be connected: a factory still warming up would miss its first round."""
    from flwr.proto.control_pb2 import ListNodesRequest
    from flwr.supercore.control import ControlHttpClient

    control = ControlHttpClient.from_server_address(
        server_address=superlink, insecure=True, root_certificates=None, interceptors=[]
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            nodes = control.ListNodes(ListNodesRequest()).nodes_info
            online = sum(1 for node in nodes if node.status == "online")
        except Exception:  # the SuperLink may still be starting: its words are not ours
            online = 0
        if online >= count or time.monotonic() > deadline:
            return online
        time.sleep(0.2)
