"""SCAFFOLD: federated averaging with control variates against client drift.

Karimireddy et al., "SCAFFOLD: Stochastic Controlled Averaging for Federated Learning"
(ICML 2020). When every factory holds different faults in a different operating mode, local
epochs pull each factory's model towards its own optimum (client drift) and the average
lands away from the pooled optimum. SCAFFOLD keeps a server control variate ``c`` (an
estimate of the pooled gradient) and one ``c_i`` per factory (its own); each local step
follows ``g_i(y) - c_i + c`` instead of ``g_i(y)``, which removes the drift to first order.

It extends Flower's :class:`~flwr.serverapp.strategy.FedAvg`: the weights are Flower's
weighted average, untouched. Around it, each training message carries ``c`` as an
ArrayRecord of its own (:data:`SCAFFOLD_CONTROL`), each reply the factory's change of
``c_i`` (:data:`SCAFFOLD_DELTA`), which is taken off the reply before FedAvg aggregates
(Flower's strategies expect exactly one ArrayRecord in a training reply) and averaged into
``c``. The factory's side is :mod:`fedpark.experiments.control_variates`.

Only the factories whose updates are aggregated move ``c``: FedPark's contract wrapper hands
this strategy the replies of the round's contributors only, so a refused or failed factory
changes neither the model nor the control variate.
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

from fedpark.experiments.protocol import SCAFFOLD_CONTROL, SCAFFOLD_DELTA


class Scaffold(FedAvg):
    """FedAvg with SCAFFOLD's server and client control variates.

    Parameters
    ----------
    **kwargs
        Flower's :class:`FedAvg` arguments (``fraction_train``, ``min_train_nodes``, ...).
        The control variate's step is ``|S| / N``: the sampled share of the nodes
        (``fraction_train``; 1.0, every factory every round, is FedPark's default).

    Notes
    -----
    ``c`` covers the model's floating-point arrays of the first round's model, starts at
    zero and lives in this object (a resumed run starts it at zero again; so do the
    factories, whose ``c_i`` live in the run's node state).
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.control: dict[str, np.ndarray] = {}

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
        deltas = [_delta(r) for r in replies if not r.has_error()]
        arrays, metrics = super().aggregate_train(
            server_round, [_without_delta(r) for r in replies]
        )
        usable = [d for d in deltas if d is not None and self._fits(d)]
        if arrays is not None and usable:
            step = min(1.0, self.fraction_train) / len(usable)
            for name in self.control:
                self.control[name] = self.control[name] + step * sum(
                    d[name].astype(self.control[name].dtype) for d in usable
                )
        return arrays, metrics

    def _fits(self, delta: dict[str, np.ndarray]) -> bool:
        """A delta for exactly ``c``'s arrays and shapes (anything else is left out: one
        factory's malformed reply must not end the run)."""
        return set(delta) == set(self.control) and all(
            delta[k].shape == v.shape for k, v in self.control.items()
        )


def _delta(reply: Message) -> dict[str, np.ndarray] | None:
    if SCAFFOLD_DELTA not in reply.content:
        return None
    record = reply.content[SCAFFOLD_DELTA]
    if not isinstance(record, ArrayRecord):
        return None
    return {name: array.numpy() for name, array in record.items()}


def _without_delta(reply: Message) -> Message:
    """The reply as FedAvg expects it: one ArrayRecord, the model."""
    if reply.has_error() or SCAFFOLD_DELTA not in reply.content:
        return reply
    content = RecordDict({k: v for k, v in reply.content.items() if k != SCAFFOLD_DELTA})
    return make_message(reply.metadata, content)
