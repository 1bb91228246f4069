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
import sys

SOCKET_ENV = "FEDPARK_CLIENTAPP_SOCKET"
FALLBACK_ENV = "FEDPARK_CLIENTAPP_FALLBACK"


def _fallback(argv: list[str]) -> None:
    command = os.environ.get(FALLBACK_ENV, "")
    if not command:
        sys.stderr.write("fedpark launcher: no warm worker and no fallback command\n")
        sys.exit(127)
    os.execv(command, [command, *argv])  # noqa: S606 - Flower's own command, our arguments


def _connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def main(argv: list[str]) -> int:
    path = os.environ.get(SOCKET_ENV, "")
    sock = _connect(path) if path else None
    if sock is None:
        _fallback(argv)
        return 127  # not reached: exec replaced this process
    cwd = os.getcwd()  # noqa: PTH109 - pathlib would be one more import per message
    request = json.dumps({"argv": argv, "cwd": cwd, "env": dict(os.environ)})
    try:
        socket.send_fds(sock, [request.encode() + b"\n"], [0, 1, 2])
    except OSError:  # the worker went away between connect and send
        sock.close()
        _fallback(argv)
        return 127
    # Stopping this process stops the task: the worker ends the child when we hang up.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: os._exit(143))
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = sock.recv(64)
        if not chunk:
            return 70  # the worker died mid-task: a failure, as a crashed process is
        answer += chunk
    return int(answer.split()[-1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
