"""What the hub's child processes (embedded S3, the SuperLink) share."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:  # pragma: no cover - runs in the child
    """preexec hook: ask the kernel for SIGKILL when the parent dies (Linux).

    SIGKILL, not SIGTERM: a parent that dies outright cannot escalate a graceful stop that
    hangs (weed's shutdown blocks when its data folder is removed meanwhile); the parent's own
    ``stop`` is the graceful path.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def stop_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Stop a child started in its own session and everything it started: SIGTERM to the
    group, SIGKILL if it has not gone within ``timeout`` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
