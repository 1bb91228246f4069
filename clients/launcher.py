"""``flwr-clientapp`` as a factory's SuperNode finds it first on its PATH: hand the task to
the warm worker, or run Flower's own command when there is none.

Flower's SuperExec starts one ``flwr-clientapp`` process per message, by name. ``fedpark
factory join`` puts a copy of this file first on the SuperNode's PATH; it passes its
arguments and its standard streams (the descriptors themselves) to the warm worker
(:mod:`fedpark.clients.warm`), which forks a child that runs Flower's ClientApp runtime with
them, and it exits with that child's status. When the worker is not there (not started,
crashed, an old socket) it becomes Flower's own ``flwr-clientapp`` (``exec``): the cold path,
slower and otherwise the same.

Standard library only, and started with ``python -I -S``: it runs before every message.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
from collections.abc import Iterator

SOCKET_ENV = "FEDPARK_CLIENTAPP_SOCKET"
FALLBACK_ENV = "FEDPARK_CLIENTAPP_FALLBACK"
ABANDONED = 70  # EX_SOFTWARE: the worker died while the task ran


def _fallback(argv: list[str]) -> None:
    command = os.environ.get(FALLBACK_ENV, "")
    try:
        os.execv(command, [command, *argv])  # noqa: S606 - Flower's own command, our arguments
    except OSError:
        sys.stderr.write(f"fedpark launcher: no warm worker, and Flower's {command!r} fails\n")
        sys.exit(127)


def _connect(path: str) -> socket.socket | None:
    """The worker's socket, if a worker of this account listens on it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        sock.close()
        return None
    _, uid, _ = struct.unpack("3i", creds)
    if uid != os.getuid():  # never hand a task (its token, our streams) to another account
        sock.close()
        return None
    return sock


def _lines(sock: socket.socket) -> Iterator[str]:
    buffer = b""
    while True:
        try:
            chunk = sock.recv(256)
        except OSError:
            return
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode(errors="replace")


def main(argv: list[str]) -> int:
    path = os.environ.get(SOCKET_ENV, "")
    sock = _connect(path) if path else None
    if sock is None:
        _fallback(argv)
        return 127  # not reached: exec replaced this process
    cwd = os.getcwd()  # noqa: PTH109 - pathlib would be one more import per message
    request = json.dumps({"argv": argv, "cwd": cwd, "env": dict(os.environ)})
    # Stopping this process stops the task: the worker ends the child when we hang up.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda number, _: os._exit(128 + number))
    try:
        socket.send_fds(sock, [request.encode() + b"\n"], [0, 1, 2])
    except OSError:  # the worker went away between connect and send
        sock.close()
        _fallback(argv)
        return 127
    lines = _lines(sock)
    if not next(lines, "").startswith("started "):
        sock.close()  # the worker did not start it (stopping, out of memory): run it here
        _fallback(argv)
        return 127
    for line in lines:
        if line.startswith("exit "):
            return int(line.split()[1])
    return ABANDONED  # the worker died mid-task: a failure, as a crashed process is


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
