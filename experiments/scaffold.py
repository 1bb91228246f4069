"""SCAFFOLD: federated averaging with control variates against client drift.

Karimireddy et al., "SCAFFOLD: Stochastic Controlled Averaging for Federated Learning"
(ICML 2020). When every factory holds different faults in a different operating mode, local
epochs pull each factory's model towards its own optimum (client drift) and the average
lands away from the pooled optimum. SCAFFOLD keeps a server control variate ``c`` (an
estimate of the pooled gradient) and one ``c_i`` per factory (its own); each local step
follows ``g_i(y) - c_i + c`` instead of ``g_i(y)``, which removes the drift to first order.

It extends Flower's :class:`~flwr.serverapp.strategy.FedAvg`: the weights are Flower's
weighted average, untouched. Around it, each training message carries ``c`` as an
ArrayRecord of its own (:data:`SCAFFOLD_CONTROL`), and each reply the factory's new ``c_i``
(:data:`SCAFFOLD_CLIENT`), which is taken off the reply before FedAvg aggregates (Flower's
strategies expect exactly one ArrayRecord in a training reply). The server keeps the last
``c_i`` it accepted from each factory and sets ``c`` to their mean, the paper's
``c = 1/N sum c_i``: a factory whose reply was lost, or that restarted with ``c_i = 0``,
is counted once, with what the server last accepted from it. The factory's side is
:mod:`fedpark.experiments.control_variates`.

``c`` is an aggregate like the model, and held to the same rule: it moves only in a round
whose model is aggregated, and only when at least ``min_train_nodes`` (FedPark's k)
factories sent a usable ``c_i``. FedPark's contract wrapper hands this strategy the replies
of the round's contributors only, so a refused or failed factory changes neither. A ``c_i``
of other names, shapes or types than ``c``, or with a value that is not finite, is left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from logging import INFO

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.app.message.message import make_message
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from fedpark.experiments.protocol import SCAFFOLD_CLIENT, SCAFFOLD_CONTROL


class Scaffold(FedAvg):
    """FedAvg with SCAFFOLD's server and client control variates.

    Parameters
    ----------
    **kwargs
        Flower's :class:`FedAvg` arguments (``fraction_train``, ``min_train_nodes``, ...).
        ``min_train_nodes`` is also the fewest factories whose ``c_i`` may move ``c``.

    Notes
    -----
    ``c`` covers the floating-point arrays of the first round's model and starts at zero; it
    and the factories' last ``c_i`` live in this object (a resumed run starts them at zero
    again; so do the factories, whose ``c_i`` live in the run's node state).
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.control: dict[str, np.ndarray] = {}
        self.clients: dict[str, dict[str, np.ndarray]] = {}  # the last c_i of each factory

    def __repr__(self) -> str:
        return f"Scaffold(fraction_train={self.fraction_train})"

    def summary(self) -> None:
        log(INFO, "\t├──> SCAFFOLD: FedAvg with server and client control variates")
        super().summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if not self.control:
            self.control = {
                name: np.zeros_like(array.numpy())
                for name, array in arrays.items()
                if np.issubdtype(array.numpy().dtype, np.floating)
            }
        messages = list(super().configure_train(server_round, arrays, config, grid))
        control = ArrayRecord({k: Array(v) for k, v in self.control.items()})
        for message in messages:
            message.content[SCAFFOLD_CONTROL] = control
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        controls: dict[str, dict[str, np.ndarray]] = {}
        for reply in replies:
            if not reply.has_error() and (own := self._client_control(reply)) is not None:
                controls[_sender(reply)] = own
        models = [_without_control(r) for r in replies]
        arrays, metrics = super().aggregate_train(server_round, models)
        if arrays is not None and len(controls) >= max(1, self.min_train_nodes):
            self.clients.update(controls)
            self.control = {
                name: np.mean([c[name] for c in self.clients.values()], axis=0).astype(value.dtype)
                for name, value in self.control.items()
            }
        return arrays, metrics

    def _client_control(self, reply: Message) -> dict[str, np.ndarray] | None:
        """The reply's ``c_i`` if it fits ``c`` (names, shapes, floats, finite), else None:
        one factory's malformed reply must neither end the run nor poison ``c``."""
        if SCAFFOLD_CLIENT not in reply.content:
            return None
        record = reply.content[SCAFFOLD_CLIENT]
        if not isinstance(record, ArrayRecord) or set(record) != set(self.control):
            return None
        try:
            own = {name: array.numpy() for name, array in record.items()}
        except (TypeError, ValueError, EOFError, OSError):  # not a numpy array's bytes
            return None
        for name, value in own.items():
            if (
                value.shape != self.control[name].shape
                or not np.issubdtype(value.dtype, np.floating)
                or not np.isfinite(value).all()
            ):
                return None
        return own


def _sender(reply: Message) -> str:
    """Whose ``c_i``: the factory's organization (FedPark's replies name it), so that a
    SuperNode restarted under a new node id replaces its old ``c_i`` instead of adding one."""
    record = reply.content.get("fedpark")
    org = record.get("org") if isinstance(record, ConfigRecord) else None
    return str(org) if isinstance(org, str) else f"node {reply.metadata.src_node_id}"


def _without_control(reply: Message) -> Message:
    """The reply as FedAvg expects it: one ArrayRecord, the model."""
    if reply.has_error() or SCAFFOLD_CLIENT not in reply.content:
        return reply
    content = RecordDict({k: v for k, v in reply.content.items() if k != SCAFFOLD_CLIENT})
    return make_message(reply.metadata, content)
