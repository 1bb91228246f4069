"""No child outlives FedPark: a parent that starts the embedded S3 server and a child whose
graceful stop hangs (it ignores SIGTERM) begins to shut down, has its folder removed under it
and is killed with SIGKILL a second later; within seconds neither child is left."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PARENT = """
import sys, threading, time
from pathlib import Path
from fedpark.clients.processes import ChildProcess
from fedpark.hub.storage.embedded import EmbeddedS3

folder = Path(sys.argv[1])
storage = EmbeddedS3(folder / "s3").start()
stubborn = ChildProcess(
    [sys.executable, "-c",
     "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('deaf', "
     "flush=True); time.sleep(600)"],
    folder / "stubborn.log",
).start()
while "deaf" not in (folder / "stubborn.log").read_text():  # SIGTERM is ignored from now on
    time.sleep(0.05)
print(storage.pid, stubborn.process.pid, flush=True)
sys.stdin.readline()  # the test says when to begin shutting down
threading.Thread(target=stubborn.stop, kwargs={"timeout": 120}).start()  # hangs: ignored
threading.Thread(target=storage.stop, kwargs={"timeout": 120}).start()
print("stopping", flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie is dead, only not yet reaped


@pytest.mark.integration  # a parent and its children, killed for real
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_die_with_a_parent_killed_mid_shutdown(tmp_path: Path) -> None:
    folder = tmp_path / "parent"
    folder.mkdir()
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdin is not None and parent.stdout is not None
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        parent.stdin.write("\n")
        parent.stdin.flush()
        assert parent.stdout.readline().strip() == "stopping"
        shutil.rmtree(folder, ignore_errors=True)  # a test's tmp cleanup, a wiped demo folder
        time.sleep(1)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [p for p in pids if _alive(p)]
        assert survivors == [], f"children outlived their parent: {survivors}"
    finally:
        for pid in pids if "pids" in locals() else []:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
