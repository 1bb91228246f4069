"""The README's single-server park, run exactly as written, as a new user would.

The block after the ``walkthrough`` marker in README.md runs in ``bash -e`` in an empty
folder, with a fresh HOME, the venv's scripts on PATH and no FEDPARK_* variable set: the hub
with its SuperLink, people and tokens, a contract approved, two factories joined, an
experiment trained, the model downloaded and verified, and everything stopped again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from harness import pids_mentioning

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- walkthrough:"
PORTS = {"hub": 8470, "SuperLink": 9093}  # the walk-through's defaults


def walkthrough() -> str:
    """The bash block right after the marker."""
    text = README.read_text()
    assert text.count(MARKER) == 1, "one walk-through in the README"
    after = text.split(MARKER, 1)[1]
    match = re.search(r"```bash\n(.*?)```", after, re.S)
    assert match is not None and after.index("```bash") < after.index("\n\n"), "block follows"
    return match.group(1)


def test_the_walkthrough_is_a_single_server_park() -> None:
    script = walkthrough()
    for needed in (
        "fedpark hub serve --with-superlink",
        "fedpark health --wait",
        "fedpark contract approve",
        "fedpark factory join --token-file",
        "fedpark experiment launch",
        "fedpark model download",
    ):
        assert needed in script, needed
    assert "--token " not in script and "fpk_" not in script, "no token on a command line"


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.timeout(1200)  # the walk-through bounds itself (900 s); pytest's default is 300
def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    busy = [f"{what} port {port}" for what, port in PORTS.items() if not _port_free(port)]
    assert not busy, f"the walk-through needs {', '.join(busy)} free on this machine"
    (tmp_path / "walkthrough.sh").write_text(walkthrough())
    scripts = str(Path(sys.executable).parent)
    env = {
        "HOME": str(tmp_path),
        "PATH": os.pathsep.join([scripts, "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8",
        "COLUMNS": "120",
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
    }
    process = subprocess.Popen(
        ["bash", "-e", "-o", "pipefail", "walkthrough.sh"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its background jobs too are stopped below, whatever happens
    )
    try:
        output, _ = process.communicate(timeout=900)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
    logs = "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
        for log in sorted(tmp_path.glob("*.log"))
    )
    assert process.returncode == 0, f"{output[-6000:]}\n{logs}"
    assert "Flower SuperLink" in output and "hub up" in output
    assert "verified" in output  # `model download` checked signature and hashes
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert sorted(manifest["participants"]) == ["plant-1", "plant-2"], manifest
    # The README promises a model that learned (about 0.75), not one that guesses.
    last = manifest["rounds"][-1]["evaluate"]
    assert last["macro_f1"] >= 0.5, manifest["rounds"]
    assert (tmp_path / "park" / "superlink" / "superlink.log").exists()
    # `kill $(jobs -p); wait` stopped everything: no SuperLink, storage or factory is left.
    assert _left_in(tmp_path) == []


def _left_in(folder: Path) -> list[int]:
    """Live processes started in ``folder`` (their working dir) or naming it."""
    left = set(pids_mentioning(str(folder)))
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cwd = (proc / "cwd").readlink()
            except OSError:
                continue
            if cwd.is_relative_to(folder):
                left.add(int(proc.name))
    return sorted(left)
