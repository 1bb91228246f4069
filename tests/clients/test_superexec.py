"""The SuperExec's task poll: the configured interval while the factory works, Flower's own
when idle, only on the exact Flower code it was written against, and really the SuperExec
a FedPark SuperNode starts."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import flwr
import pytest
from flwr.supercore.superexec import run_superexec
from harness import free_port

from fedpark.clients import superexec
from fedpark.experiments.prompt_pulls import fingerprints
from tests.clients.clocks import FakeClock


def test_the_code_it_slows_is_the_code_it_knows() -> None:
    """Fails when Flower changes: re-read run_superexec, then update EXPECTED."""
    assert flwr.__version__ == "1.41.0"
    assert fingerprints(run_superexec, superexec.EXPECTED) == superexec.EXPECTED
    # the task poll is the module's one sleep, so nothing else waits differently
    assert inspect.getsource(run_superexec).count("time.sleep(") == 1
    assert "time.sleep(task_poll_interval)" in inspect.getsource(run_superexec.run_superexec)


def test_the_poll_is_short_while_tasks_run_and_flowers_once_idle_a_minute() -> None:
    fake, busy = FakeClock(), [False]
    clock = superexec.TaskClock(fake, lambda: busy[0])  # type: ignore[arg-type]
    clock.sleep(0.1)  # just started: a run may be waiting for this factory
    fake.now += superexec.BUSY_FOR  # a minute without a task: Flower's poll
    clock.sleep(0.1)
    busy[0] = True  # a ClientApp runs
    clock.sleep(0.1)
    busy[0] = False  # it ended: the next message of the round comes soon
    clock.sleep(0.1)
    fake.now += superexec.BUSY_FOR
    clock.sleep(0.1)
    clock.sleep(5.0)  # an operator's longer interval stays theirs
    assert fake.slept == [0.1, superexec.IDLE_WAIT, 0.1, 0.1, superexec.IDLE_WAIT, 5.0]
    assert clock.monotonic() == fake.now  # everything else is the clock's own


CHILDREN = """
import signal, subprocess, time
from pathlib import Path
from fedpark.clients.superexec import running_children
seen = [running_children()]
child = subprocess.Popen(["sleep", "30"])
seen.append(running_children())
child.send_signal(signal.SIGKILL)
deadline = time.monotonic() + 10
# not waited for: a zombie, as Flower's SuperExec leaves its finished ClientApps
while running_children() and time.monotonic() < deadline:
    time.sleep(0.05)
seen.append(running_children())
seen.append(Path(f"/proc/{child.pid}").exists())  # still there, as a zombie
print(seen)
"""


@pytest.mark.integration  # a Python process of its own
def test_running_children_are_seen_and_zombies_are_not() -> None:
    # in a process of its own: the test session's servers are children of this one
    done = subprocess.run(
        [sys.executable, "-c", CHILDREN], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[False, True, False, True]"


def test_unknown_children_keep_the_short_poll(tmp_path: Path) -> None:
    assert superexec.running_children(tmp_path / "no-proc" / "self") is True


def test_another_flower_runs_unchanged() -> None:
    changed = ModuleType("run_superexec")
    changed.run_superexec = lambda: None  # type: ignore[attr-defined]
    original: Any = SimpleNamespace()
    changed.time = original  # type: ignore[attr-defined]
    assert superexec.quicken(changed) is False
    assert changed.time is original
    renamed = ModuleType("run_superexec")
    renamed.time = original  # type: ignore[attr-defined]
    assert superexec.quicken(renamed) is False and renamed.time is original


@pytest.mark.integration  # runs the installed command
def test_install_puts_a_runnable_superexec_first_on_path(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin"}
    folder = superexec.install(tmp_path / "flwr", env)
    assert env["PATH"] == f"{folder}{os.pathsep}/usr/bin"
    superexec.install(tmp_path / "flwr", env)  # a restarted SuperNode: not added twice
    assert env["PATH"].count(str(folder)) == 1
    assert not [p for p in folder.iterdir() if p.name != superexec.COMMAND]  # no partial left
    done = subprocess.run(
        [superexec.COMMAND, "--help"], env={**os.environ, **env}, capture_output=True, timeout=60
    )
    assert done.returncode == 0 and b"--runtime-api-address" in done.stdout


@pytest.mark.integration  # starts a SuperNode
def test_a_fedpark_supernode_starts_this_superexec(tmp_path: Path) -> None:
    """No SuperLink is needed: Flower's SuperNode starts its SuperExec before it connects."""
    home = tmp_path / "flwr"
    env = {**os.environ, "FLWR_HOME": str(home), "FLWR_DISABLE_UPDATE_CHECK": "1"}
    argv = [sys.executable, "-P", "-m", "fedpark.clients.node", "--insecure"]
    argv += ["--superlink", f"127.0.0.1:{free_port()}", "--port", str(free_port())]
    node = subprocess.Popen(
        argv,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    script = str(home / "bin" / superexec.COMMAND)
    try:
        deadline, found = time.monotonic() + 60, []
        while not found and time.monotonic() < deadline:
            children = Path(f"/proc/{node.pid}/task/{node.pid}/children")
            for pid in children.read_text().split() if children.exists() else []:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if script.encode() in cmdline:
                    found.append(pid)
            time.sleep(0.2)
        assert found, "the SuperNode did not start FedPark's flower-superexec"
    finally:
        os.killpg(node.pid, signal.SIGKILL)
        node.wait()
