"""The fake of Flower's Control API (:mod:`fakeflower`) answers as the real ``FlowerControl``
does: for each case the fake scripts, the real class is driven against a stand-in SuperLink
that answers over HTTP with Flower's own error payloads (``flwr.supercore.error``), and both
must raise the same hub error with the same text, or return the same answer.

The stand-in is an HTTP server in this process: the real client, its transport and its error
translation all run; only the SuperLink behind them is scripted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fakeflower import FakeFlowerControl
from flwr.proto.control_pb2 import RegisterNodeResponse
from flwr.supercore.error import ApiErrorCode, FlowerError
from flwr.supercore.error.catalog import API_ERROR_MAP
from harness import free_port

from fedpark.hub.errors import (
    ConflictError,
    FedparkError,
    FlowerUnavailableError,
    InvalidInputError,
)
from fedpark.hub.flower.control import FlowerControl

KEY = b"-----BEGIN PUBLIC KEY-----\nMFkw...\n-----END PUBLIC KEY-----\n"


class StandInSuperLink(ThreadingHTTPServer):
    """Answers each Control API path (``/v1/control/...``) as the test scripts it:
    a Flower error code, or a protobuf answer."""

    answers: dict[str, ApiErrorCode | bytes]

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers = {}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: StandInSuperLink

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        answer = self.server.answers[self.path]
        if isinstance(answer, bytes):
            status, body, kind = 200, answer, "application/protobuf"
        else:  # as Flower's http_error_translator answers a FlowerError
            spec = API_ERROR_MAP[answer]
            payload = FlowerError(answer, "internal text").to_json(spec.public_message)
            status, body, kind = spec.http_status_code, json.dumps(payload).encode(), "json"
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: pytest shows what matters


@pytest.fixture(scope="module")
def superlink() -> Iterator[StandInSuperLink]:
    server = StandInSuperLink()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _raised(call: object) -> FedparkError:
    assert callable(call)
    with pytest.raises(FedparkError) as caught:
        call()
    return caught.value


def _same(real: FedparkError, fake: FedparkError) -> None:
    assert type(real) is type(fake) and str(real) == str(fake)
    assert getattr(real, "field", None) == getattr(fake, "field", None)


def test_a_key_registered_twice_is_a_conflict_in_both(superlink: StandInSuperLink) -> None:
    superlink.answers["/v1/control/register-node"] = RegisterNodeResponse(
        node_id=1
    ).SerializeToString()
    real, fake = FlowerControl(superlink.address), FakeFlowerControl()
    assert real.register_node(KEY, "acme") == fake.register_node(KEY, "acme") == 1

    superlink.answers["/v1/control/register-node"] = ApiErrorCode.PUBLIC_KEY_ALREADY_IN_USE
    error = _raised(lambda: real.register_node(KEY, "acme"))
    assert isinstance(error, ConflictError)
    _same(error, _raised(lambda: fake.register_node(KEY, "bravo")))


def test_a_key_flower_refuses_is_invalid_input_in_both(superlink: StandInSuperLink) -> None:
    superlink.answers["/v1/control/register-node"] = ApiErrorCode.PUBLIC_KEY_NOT_VALID
    fake = FakeFlowerControl()
    fake.invalid_keys.add(KEY)
    error = _raised(lambda: FlowerControl(superlink.address).register_node(KEY, "acme"))
    assert isinstance(error, InvalidInputError)
    _same(error, _raised(lambda: fake.register_node(KEY, "acme")))


def test_an_unknown_run_reads_the_same_and_cannot_be_stopped_in_both(
    superlink: StandInSuperLink,
) -> None:
    superlink.answers["/v1/control/list-runs"] = ApiErrorCode.RUN_ID_NOT_FOUND
    superlink.answers["/v1/control/stop-run"] = ApiErrorCode.RUN_ID_NOT_FOUND
    real, fake = FlowerControl(superlink.address), FakeFlowerControl()
    assert real.status(77) == fake.status(77)
    _same(_raised(lambda: real.stop(77)), _raised(lambda: fake.stop(77)))


def test_a_finished_run_cannot_be_stopped_in_both(superlink: StandInSuperLink) -> None:
    superlink.answers["/v1/control/stop-run"] = ApiErrorCode.RUN_ALREADY_FINISHED
    fake = FakeFlowerControl()
    fake.seed_run(77, "finished", "completed")
    error = _raised(lambda: FlowerControl(superlink.address).stop(77))
    assert isinstance(error, ConflictError)  # not an outage: a concurrent stop won
    _same(error, _raised(lambda: fake.stop(77)))


@pytest.mark.parametrize("method", ["check", "status", "stop", "register_node"])
def test_a_superlink_that_does_not_answer_is_unavailable_in_both(method: str) -> None:
    real = FlowerControl(f"127.0.0.1:{free_port()}")  # nothing listens there
    fake = FakeFlowerControl()
    fake.seed_run(5)
    fake.unavailable = {method}
    told: list[tuple[str, FedparkError]] = []
    real.on_error = lambda e: told.append(("real", e))
    fake.on_error = lambda e: told.append(("fake", e))
    calls = {
        "check": lambda c: c.check(quiet=True),
        "status": lambda c: c.status(5),
        "stop": lambda c: c.stop(5),
        "register_node": lambda c: c.register_node(KEY, "acme"),
    }
    error = _raised(lambda: calls[method](real))
    assert isinstance(error, FlowerUnavailableError)
    _same(error, _raised(lambda: calls[method](fake)))
    assert [who for who, _ in told] == ["real", "fake"]  # both tell the hub's metrics
    assert fake.runs[5].status.status == "running"  # a refused stop stops nothing
