"""Keep a factory's Flower SuperNode running: restart it with backoff when it exits."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from fedpark.clients.processes import ChildProcess

log = logging.getLogger(__name__)


def flower_env(home: Path) -> dict[str, str]:
    """Environment for Flower processes: their own FLWR_HOME, no update checks, and this
    interpreter's scripts first on PATH (the SuperNode starts ``flwr-clientapp`` by name)."""
    scripts = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "FLWR_HOME": str(home),
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}",
    }


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
        str(Path(sys.executable).parent / "flower-supernode"),
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
    (it gave up, crashed, or was killed).
    """

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.argv, self.log_path, self.env = argv, log_path, env
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
            log.warning("SuperNode exited with code %s; restarting in %.0fs", code, delay)
            self.restarts += 1
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, 60.0)
        if self.current is not None:
            self.current.stop()

    def stop(self) -> None:
        self._stop.set()
