"""A typed fake of the hub's seam to Flower, :class:`fedpark.hub.flower.control.FlowerControl`,
for in-process tests of the hub's own decisions (launch, stop, supervision, node keys).

It is a subclass so that every service typed ``FlowerControl`` takes it unchanged and mypy
checks that each override keeps the real method's signature. It never reaches a SuperLink:
the real constructor (which builds the FAB) is not run, and the one place that would open a
connection, ``_client``, refuses. Plug it in at the composition root::

    fake = FakeFlowerControl()
    runtime = HubRuntime.build(settings, flower=fake)

What it mimics of Flower 1.41 (``control_handlers`` in ``flwr.superlink``), and of the real
class's translation of it into the hub's errors (``tests/hub/services/test_fakeflower.py``
holds the fake to the real one on these):

- a started run is ``pending``; a test moves it on with :meth:`set_running`,
  :meth:`finish` (``completed``, ``failed``, ``stopped``) or :meth:`lose` (a SuperLink
  without its state: ``unknown``);
- stopping an unknown run is refused by Flower (``RUN_ID_NOT_FOUND``), which the hub sees as
  :class:`FlowerUnavailableError`; a finished one (``RUN_ALREADY_FINISHED``) is a
  :class:`ConflictError`;
- a key registered twice is ``PUBLIC_KEY_ALREADY_IN_USE``: :class:`ConflictError`; a key
  Flower rejects is ``PUBLIC_KEY_NOT_VALID``: :class:`InvalidInputError`;
- a SuperLink that does not answer (:attr:`unavailable`) is :class:`FlowerUnavailableError`
  with the same text, told to ``on_error`` as the real one tells the hub's metrics.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from flwr.common.constant import Status, SubStatus
from flwr.supercore.control import ControlHttpClient

from fedpark.experiments.protocol import RunSpec
from fedpark.hub.errors import ConflictError, FlowerUnavailableError, InvalidInputError
from fedpark.hub.flower.control import RUN_UNKNOWN, FlowerControl, RunStatus

# What the real FlowerControl says it could not do, per method (its ``_call``'s ``what``).
WHAT = {
    "check": "answer",
    "start_run": "start the run",
    "status": "report the run",
    "stop": "stop the run",
    "register_node": "register the node",
}


@dataclass(frozen=True)
class Call:
    """One call the hub made: the method's name and its arguments as given."""

    method: str
    args: tuple[object, ...]


@dataclass
class FakeRun:
    run_id: int
    spec: RunSpec | None  # None: a run the test seeded, not one the hub started here
    status: RunStatus = field(default_factory=lambda: RunStatus(Status.PENDING, "", ""))


class FakeFlowerControl(FlowerControl):
    """Runs and node keys of a SuperLink kept in memory; thread-safe (the hub's run watcher
    polls from its own thread while a test calls the API).

    Parameters
    ----------
    first_run_id
        The id of the first run started; the next ones count up from it.
    """

    def __init__(self, first_run_id: int = 1001) -> None:
        # Deliberately not super().__init__(): it builds a FAB and names an address; the fake
        # needs neither, and _client below makes sure nothing falls through to the real path.
        self.address = "fake-superlink:9093"
        self.root_certificates = None
        self.on_error = None
        self.calls: list[Call] = []
        self.runs: dict[int, FakeRun] = {}
        self.nodes: dict[bytes, int] = {}
        self.invalid_keys: set[bytes] = set()  # keys Flower refuses (PUBLIC_KEY_NOT_VALID)
        self.unavailable: set[str] = set()  # methods that find no SuperLink ("*": all)
        # When set, stop() waits here first: lets a test make two stops overlap for certain.
        self.stop_barrier: threading.Barrier | None = None
        # Called with each run's id once it has started: what happens meanwhile in the hub.
        self.on_start: Callable[[int], None] | None = None
        self._lock = threading.RLock()
        self._run_ids = itertools.count(first_run_id)
        self._node_ids = itertools.count(1)

    # -- the seam -------------------------------------------------------------------------

    def _client(self) -> ControlHttpClient:
        raise AssertionError("the fake SuperLink has no Control API to connect to")

    def check(self, *, quiet: bool = False) -> None:
        self._record("check")

    def start_run(self, spec: RunSpec) -> int:
        self._record("start_run", spec)
        if not isinstance(spec, RunSpec):  # the real one would fail on it too, less clearly
            raise TypeError(f"start_run takes a RunSpec, not a {type(spec).__name__}")
        with self._lock:
            run_id = next(self._run_ids)
            self.runs[run_id] = FakeRun(run_id, spec)
        if self.on_start is not None:
            self.on_start(run_id)
        return run_id

    def status(self, run_id: int) -> RunStatus:
        self._record("status", run_id)
        with self._lock:
            run = self.runs.get(run_id)
            if run is None:  # the real one's answer to RUN_ID_NOT_FOUND, word for word
                return RunStatus(RUN_UNKNOWN, "", f"the SuperLink has no run {run_id}")
            return run.status

    def stop(self, run_id: int) -> None:
        self._record("stop", run_id)
        if self.stop_barrier is not None:
            self.stop_barrier.wait()
        with self._lock:
            run = self.runs.get(run_id)
            if run is not None and run.status.status == Status.FINISHED:
                # Flower's RUN_ALREADY_FINISHED, as the real class says it
                raise ConflictError(f"Flower has finished run {run_id} already")
            if run is None:
                # Flower's RUN_ID_NOT_FOUND: the real class reports it as not stopping the run
                self._unavailable("stop")
            assert run is not None
            run.status = RunStatus(Status.FINISHED, SubStatus.STOPPED, "")

    def register_node(self, public_key_pem: bytes, name: str) -> int:
        self._record("register_node", public_key_pem, name)
        with self._lock:
            if public_key_pem in self.invalid_keys:
                raise InvalidInputError(
                    "the Flower SuperLink does not accept this node key", field="public_key"
                )
            if public_key_pem in self.nodes:
                raise ConflictError("this node key is already registered")
            self.nodes[public_key_pem] = node_id = next(self._node_ids)
            return node_id

    # -- scripting the SuperLink ----------------------------------------------------------

    def seed_run(self, run_id: int, status: str = Status.RUNNING, sub_status: str = "") -> None:
        """A run the SuperLink knows without the hub having started it here (the catalog
        names it: a run started before the test)."""
        with self._lock:
            self.runs[run_id] = FakeRun(run_id, None, RunStatus(status, sub_status, ""))

    def set_running(self, run_id: int) -> None:
        self._set(run_id, RunStatus(Status.RUNNING, "", ""))

    def finish(self, run_id: int, sub_status: str, details: str = "") -> None:
        """Flower ends the run: ``completed``, ``failed`` or ``stopped``."""
        assert sub_status in {SubStatus.COMPLETED, SubStatus.FAILED, SubStatus.STOPPED}
        self._set(run_id, RunStatus(Status.FINISHED, sub_status, details))

    def lose(self, run_id: int) -> None:
        """The SuperLink forgets the run (restarted without its database)."""
        with self._lock:
            del self.runs[run_id]

    # -- what the hub did -----------------------------------------------------------------

    def calls_to(self, method: str) -> list[tuple[object, ...]]:
        """The arguments of each call to ``method``, in order."""
        with self._lock:
            return [c.args for c in self.calls if c.method == method]

    @property
    def started(self) -> list[RunSpec]:
        """The specs of the runs that did start (not refused ones), in order, each the very
        object the hub passed."""
        with self._lock:
            return [run.spec for run in self.runs.values() if run.spec is not None]

    # -- internals ------------------------------------------------------------------------

    def _record(self, method: str, *args: object) -> None:
        with self._lock:
            self.calls.append(Call(method, args))
            down = method in self.unavailable or "*" in self.unavailable
        if down:
            self._unavailable(method)

    def _unavailable(self, method: str) -> None:
        error = FlowerUnavailableError(f"the Flower SuperLink could not {WHAT[method]}")
        if self.on_error is not None:
            self.on_error(error)
        raise error

    def _set(self, run_id: int, status: RunStatus) -> None:
        with self._lock:
            self.runs[run_id].status = status
