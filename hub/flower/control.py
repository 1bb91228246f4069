"""The hub's handle on Flower: it starts, watches and stops runs through the SuperLink's
Control API (``ControlHttpClient``), never by shelling out to ``flwr run``.

Only Flower's control-plane modules are used here; no training code is imported.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from flwr.cli.build import build_fab_from_files
from flwr.common.constant import Status, SubStatus
from flwr.common.serde import fab_to_proto, user_config_to_proto
from flwr.proto.control_pb2 import (
    ListRunsRequest,
    RegisterNodeRequest,
    StartRunRequest,
    StopRunRequest,
)
from flwr.supercore.control import ControlHttpClient
from flwr.supercore.error import ApiErrorCode, FlowerError
from flwr.supercore.fab import Fab

from fedpark.experiments.protocol import SPEC_KEY, RunSpec
from fedpark.hub.errors import (
    ConflictError,
    FedparkError,
    FlowerUnavailableError,
    InvalidInputError,
)

log = logging.getLogger(__name__)

# The Flower App Bundle holds only this pyproject.toml: the apps are FedPark's installed code,
# so the SuperLink installs nothing per run (--disable-runtime-dependency-installation).
PYPROJECT = f"""\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "fedpark-run"
version = "1.0.0"
description = "A FedPark federated run"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "fedpark"

[tool.flwr.app.components]
serverapp = "fedpark.experiments.server_app:app"
clientapp = "fedpark.experiments.client_app:app"

[tool.flwr.app.config]
{SPEC_KEY} = "{{}}"
"""


# Flower's run ids are unsigned 64-bit and random; the health probe asks for this one.
_NO_SUCH_RUN = 2**64 - 1


def _kind(exc: Exception) -> str:
    """What failed, without the exception's text: its type, and Flower's error code."""
    if isinstance(exc, httpx.HTTPStatusError):
        error = FlowerError.from_json(exc.response.text)
        code = f", Flower error {error.code}" if error is not None else ""
        return f"HTTP {exc.response.status_code}{code}"
    return type(exc).__name__


@dataclass(frozen=True)
class RunStatus:
    status: str  # pending | starting | running | finished
    sub_status: str  # completed | failed | stopped (when finished)
    details: str


# FedPark's own status for a run the SuperLink does not know (Flower's are `Status` and
# `SubStatus`, re-exported here for the services): a SuperLink restarted without its state
# has lost it.
RUN_UNKNOWN = "unknown"
__all__ = ["RUN_UNKNOWN", "FlowerControl", "RunStatus", "Status", "SubStatus", "build_fab"]


def _error_code(exc: httpx.HTTPStatusError) -> int | None:
    """Flower's code for a refusal (its ``ApiErrorCode``), or None if it gave none."""
    error = FlowerError.from_json(exc.response.text)
    return error.code if error is not None else None


def build_fab() -> tuple[bytes, str]:
    """The FAB's bytes and sha256 (Flower identifies FABs by it)."""
    data, _ = build_fab_from_files({"pyproject.toml": PYPROJECT.encode()})
    return data, hashlib.sha256(data).hexdigest()


class FlowerControl:
    """Runs on one SuperLink.

    Parameters
    ----------
    address
        ``host:port`` of the SuperLink's Control API.
    root_certificates
        PEM of the CA that signed the SuperLink's certificate; None for plain HTTP on a
        private network.
    """

    def __init__(self, address: str, root_certificates: bytes | None = None) -> None:
        self.address = address
        self.root_certificates = root_certificates
        self._fab = build_fab()
        self.on_error: Callable[[FedparkError], None] | None = None  # told of failures: metrics

    def _client(self) -> ControlHttpClient:
        return ControlHttpClient.from_server_address(
            server_address=self.address,
            insecure=self.root_certificates is None,
            root_certificates=self.root_certificates,
            interceptors=[],
        )

    def _call(self, what: str, fn: Any, *, quiet: bool = False) -> Any:
        try:
            return fn(self._client())
        except (ConflictError, InvalidInputError):
            raise
        except Exception as exc:  # the client raises transport and status errors alike
            # Neither the answer nor the log carries Flower's text: it may quote the run
            # config, which holds the run's token. The log gets the kind and Flower's code.
            if not quiet:
                log.warning(
                    "the Flower SuperLink at %s could not %s (%s)", self.address, what, _kind(exc)
                )
            error = FlowerUnavailableError(f"the Flower SuperLink could not {what}")
            if self.on_error is not None:
                self.on_error(error)
            raise error from None

    def check(self, *, quiet: bool = False) -> None:
        """Whether the SuperLink answers its Control API: it is asked for a run that cannot
        exist (a real round trip, and the cheapest one).

        Raises
        ------
        FlowerUnavailableError
            It cannot be reached or does not answer as a SuperLink.
        """

        def ask(client: ControlHttpClient) -> None:
            try:
                client.ListRuns(ListRunsRequest(run_id=_NO_SUCH_RUN))
            except httpx.HTTPStatusError as exc:
                if _error_code(exc) != ApiErrorCode.RUN_ID_NOT_FOUND:
                    raise

        self._call("answer", ask, quiet=quiet)

    def start_run(self, spec: RunSpec) -> int:
        data, digest = self._fab
        request = StartRunRequest(
            fab=fab_to_proto(Fab(digest, data, {})),
            override_config=user_config_to_proto({SPEC_KEY: spec.model_dump_json()}),
        )
        response = self._call("start the run", lambda c: c.StartRun(request))
        return int(response.run_id)

    def status(self, run_id: int) -> RunStatus:
        """The run's state; ``unknown`` when the SuperLink has no such run (one that lost its
        state: no ``--database``, or a new database)."""

        def list_run(client: ControlHttpClient) -> Any:
            try:
                return client.ListRuns(ListRunsRequest(run_id=run_id))
            except httpx.HTTPStatusError as exc:
                if _error_code(exc) == ApiErrorCode.RUN_ID_NOT_FOUND:
                    return None
                raise

        response = self._call("report the run", list_run)
        run = response.run_dict.get(run_id) if response is not None else None
        if run is None:
            return RunStatus(RUN_UNKNOWN, "", f"the SuperLink has no run {run_id}")
        return RunStatus(run.status.status, run.status.sub_status, run.status.details)

    def stop(self, run_id: int) -> None:
        """Stop a run.

        Raises
        ------
        ConflictError
            Flower has finished the run already (stopped by a concurrent stop, or ended).
        FlowerUnavailableError
            The SuperLink does not stop it (unreachable, or it does not know the run).
        """

        def stop_run(client: ControlHttpClient) -> Any:
            try:
                return client.StopRun(StopRunRequest(run_id=run_id))
            except httpx.HTTPStatusError as exc:
                if _error_code(exc) == ApiErrorCode.RUN_ALREADY_FINISHED:
                    raise ConflictError(f"Flower has finished run {run_id} already") from None
                raise

        self._call("stop the run", stop_run)

    def register_node(self, public_key_pem: bytes, name: str) -> int:
        """Let a SuperNode's key in (SuperLinks with ``--enable-supernode-auth``).

        Raises
        ------
        ConflictError
            The key is registered already (a factory joining again with its key).
        InvalidInputError
            The SuperLink does not accept the key.
        """
        request = RegisterNodeRequest(public_key=public_key_pem, name=name)

        def register(client: ControlHttpClient) -> Any:
            try:
                return client.RegisterNode(request)
            except httpx.HTTPStatusError as exc:
                code = _error_code(exc)
                if code == ApiErrorCode.PUBLIC_KEY_ALREADY_IN_USE:
                    raise ConflictError("this node key is already registered") from None
                if code == ApiErrorCode.PUBLIC_KEY_NOT_VALID:
                    raise InvalidInputError(
                        "the Flower SuperLink does not accept this node key", field="public_key"
                    ) from None
                raise

        return int(self._call("register the node", register).node_id)
