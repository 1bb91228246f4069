"""Child processes that never outlive the FedPark process that started them.

The hub starts embedded S3 and a SuperLink, a factory its SuperNode, the demo all of them:
each is started in its own session (Ctrl-C reaches FedPark only, which stops its children in
order), tied to its parent by the kernel, and stopped as a group. One implementation for
``fedpark.hub`` and ``fedpark.clients``, which may not import each other; it lives beside
the protocol because both sides already share that package (tests/test_layering.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:  # pragma: no cover - runs in the child
    """``preexec_fn`` hook: ask the kernel for SIGKILL when the parent dies (Linux).

    SIGKILL, not SIGTERM: a parent that dies outright cannot escalate a graceful stop that
    hangs (weed's shutdown blocks when its data folder is removed meanwhile); the parent's own
    ``stop_group`` is the graceful path. The signal comes when the *thread* that started the
    child ends: start children from a thread that outlives them (the main one, a
    supervisor's).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def stop_group(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Stop a child started in its own session and everything it started: SIGTERM to the
    group, SIGKILL if it has not gone within ``timeout`` seconds. Returns its exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    return process.returncode


def free_ports(count: int) -> list[int]:
    """Distinct TCP ports on loopback that were free a moment ago, for children to bind
    (held open together while chosen, so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago (for a child to bind)."""
    return free_ports(1)[0]
