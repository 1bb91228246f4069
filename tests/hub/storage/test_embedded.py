"""The embedded SeaweedFS server: persistence, clean stop, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedpark.hub.storage.embedded import EmbeddedS3
from fedpark.hub.storage.objects import ObjectStore

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too; its parent (init) reaps it shortly.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def test_data_and_credentials_survive_a_restart(tmp_path: Path) -> None:
    with EmbeddedS3(tmp_path) as s3:
        store = ObjectStore(
            s3.endpoint, s3.credentials.access_key, s3.credentials.secret_key, buckets=("persist",)
        )
        store.ensure_buckets()
        info = store.put_bytes("persist", "k", b"kept")
        first_pid, ports = s3.pid, dict(s3._ports)
    assert first_pid is not None and not _alive(first_pid)
    for name, port in ports.items():  # weed's gRPC sockets are cleaned up
        assert not Path(f"/tmp/seaweedfs-{name.split('.')[0]}-grpc-{port}.sock").exists()
    assert oct((tmp_path / "s3-identity.json").stat().st_mode & 0o777) == "0o600"

    with EmbeddedS3(tmp_path) as s3:
        store = ObjectStore(s3.endpoint, s3.credentials.access_key, s3.credentials.secret_key)
        assert store.get_bytes("persist", "k", sha256=info.sha256) == b"kept"


def test_no_orphan_when_the_parent_is_killed(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from fedpark.hub.storage.embedded import EmbeddedS3\n"
        "s3 = EmbeddedS3(Path(sys.argv[1])).start()\n"
        "print(s3.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    weed_pid = int(parent.stdout.readline())
    assert _alive(weed_pid)
    parent.send_signal(signal.SIGKILL)  # no chance to clean up
    parent.wait()
    deadline = time.monotonic() + 15
    while _alive(weed_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(weed_pid), "weed outlived its killed parent"
