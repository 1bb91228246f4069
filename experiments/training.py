"""Local training and evaluation, shared by the ClientApp and the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from fedpark.experiments.models import Task, loss_function

# Rows per forward pass in `evaluate`: bounds the activations' memory on large test sets (a
# CNN's first feature maps over 10k images take ~140 MB); results do not depend on it, as no
# model here normalizes across the batch.
EVAL_BATCH = 2048


@dataclass(frozen=True)
class TrainConfig:
    """Local training settings.

    ``optimizer`` is Adam by default (robust on tabular factory data); ``sgd`` with
    ``momentum`` and ``weight_decay`` reproduces the benchmarks' setups (NIID-Bench: SGD,
    lr 0.01, momentum 0.9, weight decay 1e-5). ``momentum`` is ignored by Adam.
    """

    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 1e-3
    proximal_mu: float = 0.0  # FedProx: pull towards the round's global weights
    seed: int = 0
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = 0.0
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}: use adam or sgd")
        if self.momentum < 0 or self.weight_decay < 0:
            raise ValueError("momentum and weight_decay must not be negative")


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``config`` names, over all of ``model``'s parameters."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.learning_rate,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
    # fused: one kernel per step over all parameters instead of a Python loop over them; on
    # FedPark's small models a CPU round trains ~30 % faster (the results agree to float
    # rounding, and one path is always the same path: a round stays repeatable).
    return torch.optim.Adam(
        model.parameters(),
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
        fused=True,
    )


def _tensors(x: np.ndarray, y: np.ndarray, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.as_tensor(y, dtype=torch.long if task == "classification" else torch.float32)
    return torch.as_tensor(x, dtype=torch.float32), target


def train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    task: Task,
    config: TrainConfig,
    deadline: float | None = None,
    on_epoch: Callable[[int], None] | None = None,
    on_gradients: Callable[[], None] | None = None,
) -> float:
    """Train in place; returns the mean training loss over the last epoch.

    ``x`` is whatever the model takes, first axis the examples: rows ``[n, features]``,
    windows ``[n, window, features]`` or images ``[n, channels, height, width]``. With a
    ``deadline`` (``time.monotonic()``) no epoch starts after it (the first always runs);
    ``on_epoch`` is told each finished epoch's number (from 1); ``on_gradients`` is called
    after each batch's backward pass, before the optimizer's step (it may read and change
    the gradients: SCAFFOLD's correction).
    """
    if len(x) == 0:
        raise ValueError("no training examples")
    # Everything random in training (the order of the examples, dropout) follows the seed:
    # a round is repeatable, whichever process runs it. The caller's generator is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return _epochs(model, x, y, task, config, deadline, on_epoch, on_gradients)


def _epochs(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    task: Task,
    config: TrainConfig,
    deadline: float | None,
    on_epoch: Callable[[int], None] | None,
    on_gradients: Callable[[], None] | None = None,
) -> float:
    inputs, targets = _tensors(x, y, task)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = make_optimizer(model, config)
    criterion = loss_function(task)
    anchor = [p.detach().clone() for p in model.parameters()] if config.proximal_mu else []
    model.train()
    last = 0.0
    for epoch in range(config.epochs):
        if epoch and deadline is not None and time.monotonic() > deadline:
            break
        order = torch.randperm(len(inputs), generator=generator)
        total, seen = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimizer.zero_grad()
            output = model(inputs[batch])
            loss = criterion(output.squeeze(-1) if task == "regression" else output, targets[batch])
            if anchor:
                drift = sum(
                    ((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor, strict=True)
                )
                loss = loss + config.proximal_mu / 2 * drift
            loss.backward()
            if on_gradients is not None:
                on_gradients()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            seen += len(batch)
        last = total / seen
        if on_epoch is not None:
            on_epoch(epoch + 1)
    return last


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    task: Task,
    n_classes: int | None = None,
    *,
    per_class: bool = False,
) -> dict[str, float]:
    """Loss and the task's metrics: accuracy and macro-F1, or RMSE and MAE; with
    ``per_class`` also :func:`class_rates` (class 0 taken as normal operation)."""
    if len(x) == 0:
        raise ValueError("no evaluation examples")
    inputs, targets = _tensors(x, y, task)
    model.eval()
    output = torch.cat(
        [model(inputs[i : i + EVAL_BATCH]) for i in range(0, len(inputs), EVAL_BATCH)]
    )
    if task == "regression":
        prediction = output.squeeze(-1)
        error = prediction - targets
        return {
            "loss": float(nn.functional.mse_loss(prediction, targets)),
            "rmse": float(error.pow(2).mean().sqrt()),
            "mae": float(error.abs().mean()),
        }
    predicted = output.argmax(dim=1)
    classes = n_classes or int(output.shape[1])
    metrics = {
        "loss": float(nn.functional.cross_entropy(output, targets)),
        "accuracy": float((predicted == targets).float().mean()),
        "macro_f1": macro_f1(predicted.numpy(), targets.numpy(), classes),
    }
    if per_class:
        metrics |= class_rates(predicted.numpy(), targets.numpy(), classes)
    return metrics


def macro_f1(predicted: np.ndarray, actual: np.ndarray, n_classes: int) -> float:
    """Mean F1 over the classes present in ``actual`` or ``predicted``."""
    scores = []
    for c in range(n_classes):
        tp = int(((predicted == c) & (actual == c)).sum())
        fp = int(((predicted == c) & (actual != c)).sum())
        fn = int(((predicted != c) & (actual == c)).sum())
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def class_rates(
    predicted: np.ndarray, actual: np.ndarray, n_classes: int, normal: int | None = 0
) -> dict[str, float]:
    """The measures fault-diagnosis papers report, per class index ``c`` present in ``actual``.

    ``recall/c``: share of class ``c``'s examples classified as ``c`` (the TEP literature's
    *classification rate*); ``f1/c``; and with a ``normal`` class, ``detection/c`` (share of a
    fault's examples classified as any fault: it was noticed, if not named) and
    ``false_alarm`` (share of normal examples classified as a fault).
    """
    rates: dict[str, float] = {}
    for c in range(n_classes):
        actual_c, predicted_c = actual == c, predicted == c
        count = int(actual_c.sum())
        if not count:
            continue
        tp = int((actual_c & predicted_c).sum())
        rates[f"recall/{c}"] = tp / count
        rates[f"f1/{c}"] = 2 * tp / (count + int(predicted_c.sum()))
        if normal is not None and c != normal:
            rates[f"detection/{c}"] = float((predicted[actual_c] != normal).mean())
    if normal is not None and (actual == normal).any():
        rates["false_alarm"] = float((predicted[actual == normal] != normal).mean())
    return rates
