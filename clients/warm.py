"""The warm ClientApp worker: Flower's ClientApp runtime and the learning stacks imported
once, one forked child per message.

Flower's SuperExec starts a new ``flwr-clientapp`` process for every message (train, then
evaluate, each round); importing Flower's runtime and torch costs seconds of CPU each time.
This worker imports them once and waits on a Unix socket. The launcher the SuperExec runs
instead (:mod:`fedpark.clients.launcher`) hands over its arguments, environment and standard
streams; the worker forks a child that runs Flower's own ``flwr-clientapp`` entry point with
them, and reports the child's exit status back to the launcher.

What a child shares with the next is nothing the ClientApp wrote: each is a fresh fork of
the worker, which never runs a ClientApp itself. The app module is never preloaded (it is
imported in the child, from what is installed now); the FedPark library modules it imports
are, and a child that finds one of their files changed on disk (an upgraded package)
forgets them all and imports them afresh: stale code never runs. Flower's object pulls in
the child retry in milliseconds (:mod:`fedpark.experiments.prompt_pulls`). The child reseeds
Python's, numpy's and torch's global generators from the OS as a new process would
(training itself seeds from the run's seed, so a round's result does not depend on which
path ran it). The worker starts no Python thread before forking; the native pools of
OpenBLAS and jemalloc that the imports start are fork-aware.

Run by ``fedpark factory join``: ``python -m fedpark.clients.warm SOCKET``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import random
import select
import signal
import socket
import stat
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedpark.experiments import prompt_pulls

log = logging.getLogger("fedpark.warm")

PRELOAD = (
    "flwr.supernode.cli.flwr_clientapp",
    "flwr.supernode.runtime.run_clientapp",
    "flwr.clientapp",
    "flwr.app",
    "torch",
    "torch._dynamo",  # torch.optim imports it at the first optimizer: 4 s of a round
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.compute",
    "pyarrow.csv",
    "pyarrow.ipc",
    "pyarrow.parquet",
    "pydantic",
    "safetensors",
    "cryptography.hazmat.primitives.asymmetric.ed25519",
    "httpx",
    "httpcore",  # httpx imports it at its first client: 0.1 s alone, ~1 s on a busy machine
    # FedPark's library, as the app imports it (never the app module itself: APP_MODULE)
    "fedpark.contracts.reader",
    "fedpark.contracts.validate",
    "fedpark.experiments.approved",
    "fedpark.experiments.control_variates",
    "fedpark.experiments.features",
    "fedpark.experiments.models",
    "fedpark.experiments.protocol.client",
    "fedpark.experiments.protocol.node",
    "fedpark.experiments.protocol.reports",
    "fedpark.experiments.protocol.spec",
    "fedpark.experiments.training",
    "fedpark.experiments.weights",
)
APP_MODULE = "fedpark.experiments.client_app"
# FedPark's modules the worker imported for the app, and their files as they were then.
_library: dict[str, tuple[str, int, int]] = {}
REQUEST_LIMIT = 1 << 20  # bytes: arguments and environment of one task
REQUEST_TIMEOUT = 10.0  # seconds a launcher may take to send its request
STOP_GRACE = 10.0  # seconds a stopped child has before SIGKILL


def preload() -> float:
    """Import the stacks every ClientApp needs; seconds it took.

    Arrow's regex kernel is set up too (its first use costs 0.4 s; contracts check their
    patterns with it). Nothing of torch runs: its thread pool must start in the children.
    """
    started = time.perf_counter()
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # not installed here: each child imports what it needs itself
            log.warning("%s is not installed: not preloaded", name)
    pa, pc = sys.modules.get("pyarrow"), sys.modules.get("pyarrow.compute")
    if pa is not None and pc is not None:
        pc.match_substring_regex(pa.array([""]), "^$")
    runtime = sys.modules.get("flwr.supernode.runtime.run_clientapp")
    if runtime is not None:
        prompt_pulls.quicken(runtime)
    _library.clear()
    _library.update((name, stamp) for name in _fedpark_library() if (stamp := _stamp(name)))
    return time.perf_counter() - started


def _fedpark_library() -> list[str]:
    """FedPark's modules loaded here for the app (not the worker's own, ``fedpark.clients``)."""
    return [
        name
        for name in sys.modules
        if name.startswith("fedpark.") and not name.startswith("fedpark.clients")
    ]


def _stamp(name: str) -> tuple[str, int, int] | None:
    path = getattr(sys.modules.get(name), "__file__", None)
    if not path:
        return None
    try:
        info = Path(path).stat()
    except OSError:
        return None
    return path, info.st_mtime_ns, info.st_size


def _forget_if_updated() -> bool:
    """In a child: if any preloaded FedPark file changed since the worker imported it, drop
    every FedPark library module so that the app imports what is installed now."""
    if all(_stamp(name) == stamp for name, stamp in _library.items()):
        return False
    for name in _fedpark_library():
        del sys.modules[name]
    return True


@dataclass
class _Task:
    """A running child: the launcher waiting for it (None once it hung up) and its pidfd."""

    launcher: socket.socket | None
    started: float
    pidfd: int | None
    abandoned: float | None = None  # when its launcher hung up (it was sent SIGTERM)


class Worker:
    """Accept tasks on ``path`` and run each in a forked child; single-threaded.

    Parameters
    ----------
    path
        The Unix socket; its folder must be this account's own and private (0700).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tasks: dict[int, _Task] = {}  # child pid -> its task
        self.listener: socket.socket | None = None
        self.stopping = False

    def serve(self) -> None:
        _private_folder(self.path.parent)
        self.path.unlink(missing_ok=True)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        self.path.chmod(0o600)  # only the factory's own account starts tasks
        self.listener.listen(64)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        log.info("warm ClientApp worker ready on %s (pid %d)", self.path, os.getpid())
        try:
            while not self.stopping:
                self._step()
        finally:
            self._shutdown()

    def _stop(self, *_: Any) -> None:
        self.stopping = True

    def _step(self) -> None:
        assert self.listener is not None
        watched: list[socket.socket | int] = [self.listener]
        watched += [t.launcher for t in self.tasks.values() if t.launcher is not None]
        watched += [t.pidfd for t in self.tasks.values() if t.pidfd is not None]
        try:  # a child's pidfd turns readable when it exits: its launcher hears at once
            readable, _, _ = select.select(watched, [], [], 0.5)
        except InterruptedError:
            readable = []
        for ready in readable:
            if ready is self.listener:
                self._accept()
            elif isinstance(ready, socket.socket):  # a launcher hung up: it was stopped
                self._abandon(ready)
        self._reap()
        self._kill_overdue()

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except OSError as exc:  # out of descriptors, say: this launcher falls back
            log.warning("cannot accept a task (%s)", type(exc).__name__)
            return
        try:
            request, fds = _read_request(conn)
        except (OSError, ValueError) as exc:
            log.warning("a launcher's request was unreadable (%s)", type(exc).__name__)
            conn.close()
            return
        if threading.active_count() != 1:  # never fork with a Python thread running
            raise RuntimeError("the warm worker started a thread; it must not fork now")
        # A stop signal between fork and the child's own handlers would be this worker's.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        try:
            pid = os.fork()
        except OSError as exc:  # no memory for a fork: the launcher runs Flower's command
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            log.warning("cannot fork a ClientApp (%s)", type(exc).__name__)
            _close_all(fds)
            conn.close()
            return
        if pid == 0:
            self._child(conn, request, fds, mask)  # never returns
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        _close_all(fds)
        self.tasks[pid] = _Task(conn, time.monotonic(), _pidfd(pid))
        with contextlib.suppress(OSError):  # the launcher knows its task is under way
            conn.sendall(f"started {pid}\n".encode())
        log.info("task %s: child %d", _task(request["argv"]), pid)

    def _child(
        self, conn: socket.socket, request: dict[str, Any], fds: list[int], mask: set[Any]
    ) -> None:
        code = 1
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            if self.listener is not None:
                self.listener.close()
            for task in self.tasks.values():
                if task.launcher is not None:
                    task.launcher.close()
                if task.pidfd is not None:
                    os.close(task.pidfd)
            conn.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            _reseed()
            if _forget_if_updated():
                log.info("FedPark was updated since the worker started: imported afresh")
            code = _run_clientapp(request["argv"])
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def _abandon(self, conn: socket.socket) -> None:
        for pid, task in self.tasks.items():
            if task.launcher is conn:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)  # Flower's handler pushes its status
                conn.close()
                task.launcher, task.abandoned = None, time.monotonic()

    def _kill_overdue(self, grace: float = STOP_GRACE) -> None:
        now = time.monotonic()
        for pid, task in self.tasks.items():
            if task.abandoned is not None and now - task.abandoned > grace:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _reap(self) -> None:
        while self.tasks:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code  # killed by a signal: 128 + its number
            task = self.tasks.pop(pid, None)
            if task is None:
                continue
            log.info(
                "child %d ended with %d after %.1fs", pid, code, time.monotonic() - task.started
            )
            if task.pidfd is not None:
                os.close(task.pidfd)
            if task.launcher is not None:
                with contextlib.suppress(OSError):
                    task.launcher.sendall(f"exit {code}\n".encode())
                task.launcher.close()

    def _shutdown(self) -> None:
        # No new task first: launchers still waiting to be accepted fall back at once.
        if self.listener is not None:
            self.listener.close()
        self.path.unlink(missing_ok=True)
        for pid, task in self.tasks.items():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            task.abandoned = task.abandoned or time.monotonic()
        deadline = time.monotonic() + STOP_GRACE
        while self.tasks and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        self._kill_overdue(grace=0)  # children die with their worker, also a stuck one
        while self.tasks and time.monotonic() < deadline + 5:
            self._reap()
            time.sleep(0.05)


def _private_folder(folder: Path) -> None:
    """Make ``folder`` (0700), or check that it is this account's own and private: a
    folder another account made where the socket goes would hand it every task."""
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700, parents=True)
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise PermissionError(f"{folder} is not a folder")
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise PermissionError(f"{folder} is not this account's private folder")


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # an old kernel: the half-second tick reaps it
        return None


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _read_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    conn.settimeout(REQUEST_TIMEOUT)
    data, fds, _, _ = socket.recv_fds(conn, REQUEST_LIMIT, 3)
    try:
        while not data.endswith(b"\n"):
            if len(data) > REQUEST_LIMIT:
                raise ValueError("request too large")
            chunk = conn.recv(65536)
            if not chunk:
                raise ValueError("request cut short")
            data += chunk
        request = json.loads(data)
        if not isinstance(request, dict):
            raise ValueError("not a launcher's request")
        if len(fds) != 3 or not isinstance(request.get("argv"), list):
            raise ValueError("not a launcher's request")
        if not isinstance(request.get("env"), dict) or not isinstance(request.get("cwd"), str):
            raise ValueError("not a launcher's request")
    except BaseException:
        _close_all(fds)
        raise
    conn.settimeout(None)
    return request, fds


def _reseed() -> None:
    """Python's, numpy's and torch's global generators from the OS, as in a new process (a
    fork would otherwise give every child the worker's state)."""
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.seed()


def _run_clientapp(argv: list[str]) -> int:
    """Flower's ``flwr-clientapp`` entry point, as its console script runs it."""
    from flwr.supernode.cli import flwr_clientapp

    sys.argv = ["flwr-clientapp", *argv]
    try:
        flwr_clientapp()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _task(argv: list[str]) -> str:
    """The task's address, for the log (never the token that follows it)."""
    return argv[1] if len(argv) > 1 and argv[0] == "--runtime-api-address" else "?"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m fedpark.clients.warm SOCKET\n")
        return 2
    # Its own lines only, through its own handler: a root handler would print every Flower
    # line a child logs a second time (Flower's logger propagates).
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    took = preload()
    worker = Worker(Path(args[0]))
    log.info("preloaded Flower's ClientApp runtime and torch in %.1fs", took)
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
