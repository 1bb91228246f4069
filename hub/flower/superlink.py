"""A Flower SuperLink configured for a FedPark hub, as a child process.

``fedpark superlink serve`` runs one on its own (a park with the SuperLink on another server);
``fedpark hub serve --with-superlink`` starts one beside the hub (a single-server park). Both
start Flower's own ``flower-superlink`` with what a FedPark park needs, so no operator types a
raw Flower command line:

- the interpreter's scripts folder first on ``PATH``: the SuperLink starts
  ``flower-superexec`` and ``flwr-serverapp`` by name, which a venv that is not activated
  would not find (Flower then dies with a traceback);
- ``--disable-runtime-dependency-installation``: FedPark's apps are installed code, a run
  installs nothing;
- its own ``FLWR_HOME`` under the data dir, no update checks;
- TLS with the park's certificates, or ``--insecure`` only where asked for;
- state in memory unless a database is named (a run lost with it is resumed by the hub from
  its last checkpoint: docs/experiments.md).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from fedpark.experiments.protocol.processes import die_with_parent, stop_group
from fedpark.hub.errors import ConfigurationError, FedparkError

DEFAULT_PORT = 9093


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (a wildcard address is not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port_free(host: str, port: int, what: str) -> None:
    """Refuse a port something else listens on, before anything is started or written.

    Raises
    ------
    ConfigurationError
        The port is taken (or the address is not this machine's).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise ConfigurationError(f"{what}: cannot resolve the address {host!r}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigurationError(
                    f"{what}: port {port} on {host} is in use (another process listens "
                    "there); stop it or choose another port"
                ) from None
            raise ConfigurationError(
                f"{what}: cannot listen on {host}:{port} (not an address of this machine?)"
            ) from None


@dataclass(frozen=True)
class SuperLinkConfig:
    """How to run the park's SuperLink.

    Parameters
    ----------
    state_dir
        Its ``FLWR_HOME``, log and (optional) database live here.
    host, port
        Where it serves Flower's Fleet, Control and runtime APIs (one port in Flower 1.41).
    database
        Flower's state database; None keeps the state in memory.
    ca_file, certfile, keyfile
        The park's CA and the SuperLink's certificate (``fedpark pki``): TLS. Without them it
        speaks plain HTTP, which :meth:`check` allows on loopback or with ``insecure``.
    supernode_auth
        Let in only SuperNodes whose keys the hub registered.
    insecure
        Plain HTTP on a non-loopback address was asked for explicitly.
    """

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    database: Path | None = None
    ca_file: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    supernode_auth: bool = False
    insecure: bool = False

    @property
    def tls(self) -> bool:
        return self.certfile is not None

    @property
    def address(self) -> str:
        """Where this machine's hub reaches it (a wildcard bind answers on loopback)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "superlink.log"

    def check(self) -> None:
        """Refuse settings that would start a SuperLink the park should not run."""
        given = [self.ca_file, self.certfile, self.keyfile]
        if any(given) and not all(given):
            raise ConfigurationError("give --ca, --certfile and --keyfile together, or none")
        for path in filter(None, [*given]):
            if not path.is_file():
                raise ConfigurationError(f"{path} is not a file")
        if not self.tls and not is_loopback(self.host) and not self.insecure:
            raise ConfigurationError(
                f"plain HTTP on {self.host} would let anyone on that network drive Flower "
                "(its Control API needs no credentials): give the park's certificates "
                "(--ca, --certfile, --keyfile from `fedpark pki`) or --insecure on a private "
                "network you trust"
            )

    def argv(self) -> list[str]:
        scripts = Path(sys.executable).parent
        argv = [
            str(scripts / "flower-superlink"),
            "--disable-runtime-dependency-installation",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        if self.tls:
            argv += [
                "--ssl-ca-certfile",
                str(self.ca_file),
                "--ssl-certfile",
                str(self.certfile),
                "--ssl-keyfile",
                str(self.keyfile),
            ]
        else:
            argv.append("--insecure")
        if self.database is not None:
            argv += ["--database", str(self.database)]
        if self.supernode_auth:
            argv.append("--enable-supernode-auth")
        return argv

    def env(self) -> dict[str, str]:
        scripts = str(Path(sys.executable).parent)
        return {
            **os.environ,
            "FLWR_HOME": str(self.state_dir / "flwr"),
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")]),
        }


class SuperLink:
    """``flower-superlink`` as a child that never outlives this process.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, config: SuperLinkConfig, start_timeout: float = 180.0) -> None:
        self.config = config
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> SuperLink:
        config = self.config
        config.check()
        check_port_free(config.host, config.port, "the Flower SuperLink")
        config.state_dir.mkdir(parents=True, exist_ok=True)
        parent = os.getpid()
        with config.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                config.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=config.env(),
                cwd=config.state_dir,
                start_new_session=True,  # stop() signals it and the ServerApps it started
                preexec_fn=lambda: die_with_parent(parent),
            )
        try:
            self._wait_ready()
        except FedparkError:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        from fedpark.hub.flower.control import FlowerControl

        ca = self.config.ca_file.read_bytes() if self.config.ca_file else None
        control = FlowerControl(self.config.address, ca)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise ConfigurationError(
                    f"the Flower SuperLink exited at start; see {self.config.log_path}"
                )
            with contextlib.suppress(FedparkError):
                control.check(quiet=True)
                return
            time.sleep(0.3)
        raise ConfigurationError(
            f"the Flower SuperLink did not answer within {self.start_timeout:.0f} s; "
            f"see {self.config.log_path}"
        )

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait(self) -> int:
        """Until it exits on its own; its exit code."""
        if self._process is None:
            return 0
        return self._process.wait()

    def stop(self, timeout: float = 20.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_group(process, timeout)

    def __enter__(self) -> SuperLink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
