"""Warm ClientApps: the launcher hands a task to the worker or falls back to Flower's own
command, the worker runs each task in a fresh fork, and Flower still launches ClientApps the
way both expect (pinned: an upgrade that changes it fails here first)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flwr
import pytest

from fedpark.clients.launcher import FALLBACK_ENV, SOCKET_ENV
from fedpark.clients.processes import ChildProcess
from fedpark.clients.supernode import WarmClientApps

# A worker whose task runner is a probe instead of Flower's runtime: what a child sees.
PROBE_WORKER = textwrap.dedent(
    """
    import json, os, random, sys, time
    import numpy
    import torch
    import fedpark.clients.warm as warm

    warm.PRELOAD = ("numpy", "torch")
    STATE = {"runs": 0}

    def probe(argv):
        STATE["runs"] += 1  # a module global of the worker's image, changed in the child
        if argv and argv[0] == "sleep":
            time.sleep(float(argv[1]))
        print(json.dumps({
            "argv": argv, "cwd": os.getcwd(), "env": os.environ.get("PROBE"),
            "runs": STATE["runs"], "random": random.random(),
            "numpy": float(numpy.random.random()), "torch": float(torch.rand(1)),
            "pid": os.getpid(),
        }), flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        return int(argv[-1]) if argv and argv[-1].isdigit() else 0

    warm._run_clientapp = probe
    sys.exit(warm.main([sys.argv[1]]))
    """
)


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[WarmClientApps]:
    apps = WarmClientApps.create(tmp_path / "work")
    worker = ChildProcess(
        [sys.executable, "-c", PROBE_WORKER, str(apps.socket)], tmp_path / "worker.log"
    ).start()
    deadline = time.monotonic() + 60
    while not apps.socket.exists():
        assert worker.alive() and time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.05)
    yield apps
    worker.stop()
    assert not apps.socket.exists()  # a stopped worker leaves no socket behind
    apps.remove()


def _launch(apps: WarmClientApps, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, SOCKET_ENV: str(apps.socket), FALLBACK_ENV: "/nonexistent", **env}
    return subprocess.run(
        [str(apps.bin_dir / "flwr-clientapp"), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=apps.bin_dir,
    )


def _seen(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.integration  # a worker process and launchers
def test_a_task_runs_in_the_worker_with_the_launchers_streams_and_status(
    apps: WarmClientApps,
) -> None:
    result = _launch(apps, "--runtime-api-address", "127.0.0.1:1", "3", PROBE="hello")
    seen = _seen(result)
    assert result.returncode == 3  # the child's status is the launcher's
    assert seen["argv"] == ["--runtime-api-address", "127.0.0.1:1", "3"]
    assert (seen["env"], seen["cwd"]) == ("hello", str(apps.bin_dir))
    assert result.stderr.strip() == "to stderr"  # the launcher's own streams


@pytest.mark.integration  # a worker process and launchers
def test_each_task_is_a_fresh_fork_sharing_no_state(apps: WarmClientApps) -> None:
    first, second = _seen(_launch(apps, "0")), _seen(_launch(apps, "0"))
    assert first["runs"] == second["runs"] == 1  # nothing a task changed reaches the next
    assert first["pid"] != second["pid"]
    # Python's, numpy's and torch's generators reseeded as in a new process, not the
    # worker's copy (which every fork would otherwise share: the same "random" init).
    assert first["random"] != second["random"] and first["numpy"] != second["numpy"]
    assert first["torch"] != second["torch"]


@pytest.mark.integration  # a worker process and launchers
def test_tasks_run_side_by_side(apps: WarmClientApps) -> None:
    started = time.monotonic()
    env = {**os.environ, SOCKET_ENV: str(apps.socket), FALLBACK_ENV: "/nonexistent"}
    launcher = str(apps.bin_dir / "flwr-clientapp")
    running = [
        subprocess.Popen([launcher, "sleep", "1", "0"], env=env, stdout=subprocess.DEVNULL)
        for _ in range(3)
    ]
    assert [p.wait(30) for p in running] == [0, 0, 0]
    assert time.monotonic() - started < 2.5  # three one-second tasks, not one after another


@pytest.mark.integration  # a worker process and launchers
def test_a_killed_child_is_reported_as_a_failure(apps: WarmClientApps, tmp_path: Path) -> None:
    env = {**os.environ, SOCKET_ENV: str(apps.socket), FALLBACK_ENV: "/nonexistent"}
    launcher = subprocess.Popen(
        [str(apps.bin_dir / "flwr-clientapp"), "sleep", "30", "0"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    children = _children_of_worker(apps)
    assert len(children) == 1
    os.kill(children[0], signal.SIGKILL)
    assert launcher.wait(30) == 128 + signal.SIGKILL


@pytest.mark.integration  # a worker process and launchers
def test_a_stopped_launcher_stops_its_child(apps: WarmClientApps) -> None:
    env = {**os.environ, SOCKET_ENV: str(apps.socket), FALLBACK_ENV: "/nonexistent"}
    launcher = subprocess.Popen([str(apps.bin_dir / "flwr-clientapp"), "sleep", "30", "0"], env=env)
    time.sleep(1.0)
    (child,) = _children_of_worker(apps)
    launcher.terminate()
    launcher.wait(10)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


@pytest.mark.integration  # a worker process and launchers
def test_without_a_worker_the_launcher_becomes_flowers_command(tmp_path: Path) -> None:
    apps = WarmClientApps.create(tmp_path / "work")  # no worker listens on its socket
    fallback = tmp_path / "flwr-clientapp-real"
    fallback.write_text('#!/bin/sh\necho fallback "$@"\nexit 4\n')
    fallback.chmod(0o755)
    result = _launch(apps, "--token", "t", FEDPARK_CLIENTAPP_FALLBACK=str(fallback))
    assert (result.returncode, result.stdout.strip()) == (4, "fallback --token t")
    # A stale socket file (a worker that died) is the same: no worker.
    apps.socket.parent.mkdir(parents=True, exist_ok=True)
    apps.socket.write_text("")
    result = _launch(apps, "x", FEDPARK_CLIENTAPP_FALLBACK=str(fallback))
    assert result.stdout.strip() == "fallback x"
    apps.remove()


def test_flower_launches_clientapps_as_the_launcher_expects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Flower 1.41's SuperExec runs ``flwr-clientapp`` by name, found on PATH, with these
    arguments: the launcher passes them on whole, and falls back to that same command."""
    from flwr.supercore.constant import TASK_TYPE_TO_COMMAND, TaskType
    from flwr.supercore.superexec.executor import subprocess_executor
    from flwr.supercore.superexec.executor.types import ExecutionSpec

    assert flwr.__version__ == "1.41.0", "re-check the warm ClientApp path for this Flower"
    assert TASK_TYPE_TO_COMMAND[TaskType.CLIENT_APP] == "flwr-clientapp"
    launched: list[list[str]] = []
    monkeypatch.setattr(
        subprocess_executor.subprocess, "Popen", lambda args, **_: launched.append(args)
    )
    spec = ExecutionSpec(
        task_type=TaskType.CLIENT_APP,
        runtime_api_address="127.0.0.1:9094",
        token="secret",
        insecure=True,
        root_certificates_path=None,
        parent_pid=42,
        runtime_dependency_install=False,
        suppress_output=False,
        task_id=7,
    )
    subprocess_executor.SubprocessExecutor().launch(spec)
    assert launched == [
        [
            "flwr-clientapp",
            "--runtime-api-address",
            "127.0.0.1:9094",
            "--token",
            "secret",
            "--insecure",
            "--parent-pid",
            "42",
        ]
    ]


def _children_of_worker(apps: WarmClientApps) -> list[int]:
    """The worker's live children (found through /proc: the worker is our grandchild)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if str(apps.socket).encode() in cmdline and parent != os.getpid():
            state = stat.rsplit(")", 1)[1].split()[0]
            if state != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_stack_that_is_not_installed_is_not_preloaded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from fedpark.clients import warm

    monkeypatch.setattr(warm, "PRELOAD", ("json", "fedpark_no_such_stack"))
    assert warm.preload() >= 0  # the worker still starts; children import what they need
    assert "fedpark_no_such_stack is not installed" in caplog.text


def test_the_socket_folder_must_be_this_accounts_private_one(tmp_path: Path) -> None:
    from fedpark.clients.warm import _private_folder

    mine = tmp_path / "mine"
    _private_folder(mine)  # made, 0700
    assert (mine.stat().st_mode & 0o777) == 0o700
    _private_folder(mine)  # and accepted again
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # another account could have put its own socket here
    with pytest.raises(PermissionError):
        _private_folder(shared)
    link = tmp_path / "link"
    link.symlink_to(mine)
    with pytest.raises(PermissionError):
        _private_folder(link)


@pytest.mark.integration  # a launcher process
def test_a_task_the_worker_did_not_start_runs_on_flowers_command(tmp_path: Path) -> None:
    """A worker that hangs up before it started the task (stopping, out of memory): the
    launcher runs Flower's own command instead of failing the message."""
    import socket
    import threading

    apps = WarmClientApps.create(tmp_path / "work")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(apps.socket))
    listener.listen(1)

    def hang_up() -> None:
        conn, _ = listener.accept()
        _, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        for fd in fds:  # the launcher's streams: holding them would hold its output open
            os.close(fd)
        conn.close()

    thread = threading.Thread(target=hang_up)
    thread.start()
    fallback = tmp_path / "flwr-clientapp-real"
    fallback.write_text('#!/bin/sh\necho fallback "$@"\n')
    fallback.chmod(0o755)
    result = _launch(apps, "x", FEDPARK_CLIENTAPP_FALLBACK=str(fallback))
    thread.join(10)
    listener.close()
    apps.remove()
    assert (result.returncode, result.stdout.strip()) == (0, "fallback x")


@pytest.mark.integration  # a worker process and a launcher
def test_a_request_that_is_not_one_leaves_the_worker_serving(apps: WarmClientApps) -> None:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as rogue:
        rogue.connect(str(apps.socket))
        socket.send_fds(rogue, [b"[]\n"], [0, 1, 2])
        assert rogue.recv(64) == b""  # refused: hung up on
    assert _launch(apps, "0").returncode == 0  # and the next task runs


LIBRARY_PROBE = textwrap.dedent(
    """
    import json, sys
    import fedpark.clients.warm as warm

    warm.preload()
    preloaded = set(sys.modules)
    assert warm.APP_MODULE not in preloaded  # the app itself: never
    assert not warm._forget_if_updated()  # nothing changed: the preloaded library serves
    import fedpark.experiments.client_app as app
    missed = sorted(m for m in set(sys.modules) - preloaded if m.startswith("fedpark."))
    features = sys.modules["fedpark.experiments.features"]
    name, (path, mtime, size) = next(iter(warm._library.items()))
    warm._library[name] = (path, mtime - 1, size)  # as if the package were upgraded since
    del sys.modules[warm.APP_MODULE]
    forgot = warm._forget_if_updated()
    gone = "fedpark.experiments.features" not in sys.modules
    import fedpark.experiments.client_app as fresh
    print(json.dumps({
        "missed": missed, "library": len(warm._library), "forgot": forgot, "gone": gone,
        "fresh": sys.modules["fedpark.experiments.features"] is not features and fresh is not app,
    }))
    """
)


@pytest.mark.integration  # a process that preloads torch and Flower
def test_the_worker_preloads_the_apps_library_and_never_runs_it_stale() -> None:
    result = subprocess.run(
        [sys.executable, "-c", LIBRARY_PROBE], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # Importing the app loads nothing of FedPark's but the app: the rest was preloaded.
    assert seen["missed"] == ["fedpark.experiments.client_app"]
    assert seen["library"] > 10
    # A changed file: the child drops the library and imports what is installed now.
    assert seen["forgot"] and seen["gone"] and seen["fresh"]


class _Worker:
    """What ``wait_ready`` reads of the worker's supervisor."""

    def __init__(self, restarts: int = 0, stopped: bool = False) -> None:
        self.restarts, self.stopped = restarts, stopped


def test_factory_join_waits_for_a_warm_worker_and_not_for_a_dead_one(tmp_path: Path) -> None:
    apps = WarmClientApps.create(tmp_path / "work")
    try:
        assert not apps.wait_ready(_Worker(), timeout=0.2)  # not up in time: join anyway
        assert not apps.wait_ready(_Worker(restarts=1), timeout=60)  # it died: no waiting
        assert not apps.wait_ready(_Worker(stopped=True), timeout=60)  # Ctrl-C
        apps.socket.touch()  # the worker listens once it has preloaded
        assert apps.wait_ready(_Worker(), timeout=0)
    finally:
        apps.remove()
