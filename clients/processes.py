"""Child processes that never outlive FedPark (the hub in the demo, later SuperNodes)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import IO

from fedpark.experiments.protocol.processes import die_with_parent, free_port, stop_group

__all__ = ["ChildProcess", "free_port"]


class ChildProcess:
    """A command in its own process group, stopped with SIGTERM (then SIGKILL).

    The kernel kills it (SIGKILL) if this process dies without stopping it, even in the middle
    of a stop that hangs.
    """

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ChildProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        parent = os.getpid()
        log: IO[bytes]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
                preexec_fn=lambda: die_with_parent(parent),
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.process is None:
            return None
        return stop_group(self.process, timeout)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
