"""The factory's side of SCAFFOLD (the server's is :mod:`fedpark.experiments.scaffold`).

Each local step follows ``g_i(y) - c_i + c``: the batch gradient, corrected by the server's
control variate ``c`` (the park's mean gradient) minus this factory's own ``c_i``. After the
local epochs the factory's new ``c_i`` is the mean of the uncorrected batch gradients it met
along the way, and the reply carries it beside the model.

Why the gradients and not the weights: SCAFFOLD's "option II" reads ``c_i`` back from the
weights' movement, ``(x - y) / (K * lr)``, which is the mean of the gradients met only for
plain SGD; FedPark factories train with Adam by default. Taken from the gradients
themselves it is option II's quantity under any optimizer, at no extra pass over the data.
Like the model update, it is an average over many rows: no row leaves in it.

``c_i`` persists in the run's node state (Flower's ``Context.state``), which the SuperNode
keeps between messages of one run. Lost (a restarted SuperNode), it starts at zero again
for one round; the server keeps the last ``c_i`` it accepted from each factory and
replaces it with the next, so nothing is counted twice.
"""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, RecordDict
from torch import nn

from fedpark.experiments.protocol import SCAFFOLD_CONTROL

OWN_CONTROL = "fedpark-scaffold-own"  # this factory's c_i in the node state


class ControlVariates:
    """Correct a model's gradients during local training and estimate the new ``c_i``.

    Parameters
    ----------
    model : nn.Module
        The model about to be trained (its parameters are corrected in place).
    server : dict[str, np.ndarray]
        ``c``, keyed like the model's state dict (its floating-point entries).
    own : dict[str, np.ndarray]
        This factory's ``c_i`` from the last round it trained (empty: zeros).
    """

    def __init__(
        self, model: nn.Module, server: dict[str, np.ndarray], own: dict[str, np.ndarray]
    ) -> None:
        self.keys = list(server)
        params = dict(model.named_parameters())
        self.params = {k: params[k] for k in self.keys if k in params}
        self.own = {k: own.get(k, np.zeros_like(server[k])) for k in self.keys}
        self.correction = {
            k: torch.as_tensor(server[k] - self.own[k], dtype=p.dtype)
            for k, p in self.params.items()
        }
        self.sums = {k: torch.zeros_like(p) for k, p in self.params.items()}
        self.steps = 0

    def __call__(self) -> None:
        """After a batch's backward pass: remember the gradient, then correct it."""
        with torch.no_grad():
            for key, param in self.params.items():
                if param.grad is None:
                    continue
                self.sums[key] += param.grad
                param.grad += self.correction[key]
        self.steps += 1

    def updated(self) -> dict[str, np.ndarray]:
        """The new ``c_i``: the mean gradient met (entries that are not parameters: 0)."""
        if not self.steps:
            return dict(self.own)
        return {
            k: (self.sums[k] / self.steps).numpy().astype(self.own[k].dtype)
            if k in self.sums
            else np.zeros_like(self.own[k])
            for k in self.keys
        }


class ControlMismatchError(ValueError):
    """SCAFFOLD's server control variate does not fit the model the message carries."""


def from_message(
    content: RecordDict, model: nn.Module, state: RecordDict
) -> ControlVariates | None:
    """SCAFFOLD's correction when a training message carries the server's ``c`` (else None),
    with this factory's ``c_i`` from the node state."""
    if SCAFFOLD_CONTROL not in content:
        return None
    record = content[SCAFFOLD_CONTROL]
    shapes = model.state_dict()
    server = {k: a.numpy() for k, a in record.items()} if isinstance(record, ArrayRecord) else {}
    if not server or any(k not in shapes or shapes[k].shape != v.shape for k, v in server.items()):
        raise ControlMismatchError()  # the hub reports its type name: a server-side fault
    return ControlVariates(model, server, own_control(state))


def finish(control: ControlVariates, state: RecordDict) -> ArrayRecord:
    """After training: keep the new ``c_i`` in the node state; the record the reply carries."""
    updated = control.updated()
    keep_own_control(state, updated)
    return ArrayRecord({k: Array(v) for k, v in updated.items()})


def own_control(state: RecordDict) -> dict[str, np.ndarray]:
    """This factory's ``c_i`` from the node state (empty before its first round)."""
    record = state.get(OWN_CONTROL)
    if not isinstance(record, ArrayRecord):
        return {}
    return {k: a.numpy() for k, a in record.items()}


def keep_own_control(state: RecordDict, control: dict[str, np.ndarray]) -> None:
    state[OWN_CONTROL] = ArrayRecord({k: Array(v) for k, v in control.items()})
