"""A recording TCP proxy on loopback: every byte a client sends is kept for inspection."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

from harness import free_port


@dataclass
class RecordingProxy:
    """Forwards ``127.0.0.1:port`` to ``target`` and records both directions.

    Protocol-agnostic (HTTP/1.1, gRPC over HTTP/2): it sees exactly the bytes on the wire.
    """

    target: tuple[str, int]
    port: int = field(default_factory=free_port)
    sent: bytearray = field(default_factory=bytearray)  # client -> target
    received: bytearray = field(default_factory=bytearray)  # target -> client
    connections: int = 0
    attempts_while_down: int = 0  # connections accepted while the target refused them

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                with self._lock:
                    self.attempts_while_down += 1
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, outbound: bool) -> None:
        record = self.sent if outbound else self.received
        try:
            while chunk := source.recv(65536):
                with self._lock:
                    record.extend(chunk)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        self._server.close()
