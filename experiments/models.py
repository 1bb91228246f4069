"""Torch models for factory data: an MLP for tabular rows and a 1-D temporal CNN over windows,
plus NIID-Bench's simple CNN for images (the reference model of federated benchmarks).

The factory models avoid batch normalization: its running statistics would be averaged across
factories whose data differ, which hurts federated training; layer normalization has no such
state. The simple CNN has no normalization at all, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from fedpark.experiments.features import FeaturePlan
from fedpark.experiments.protocol.plan import ModelSettings
from fedpark.experiments.protocol.spec import RunSpec

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class ModelSpec:
    """What to build.

    Parameters
    ----------
    kind
        ``mlp`` (one row → one prediction) or ``tcnn`` (a window of rows → one prediction).
    task
        ``classification`` (cross-entropy over classes) or ``regression`` (MSE on one value).
    hidden
        Widths of the MLP's hidden layers, or the CNN's channels per convolution.
    window
        Rows per window for ``tcnn`` (ignored by ``mlp``).
    kernel_size
        Convolution kernel length for ``tcnn``.
    dropout
        Dropout probability between layers.
    """

    kind: Literal["mlp", "tcnn"] = "mlp"
    task: Task = "classification"
    hidden: tuple[int, ...] = field(default=(64, 64))
    window: int = 32
    kernel_size: int = 5
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in ("mlp", "tcnn"):
            raise ValueError(f"unknown model kind {self.kind!r}: use mlp or tcnn")
        if self.task not in ("classification", "regression"):
            raise ValueError(f"unknown task {self.task!r}: use classification or regression")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError("hidden needs at least one positive width")
        if self.kind == "tcnn" and (self.window < 2 or self.kernel_size < 1):
            raise ValueError("tcnn needs window >= 2 and kernel_size >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    @classmethod
    def of(cls, settings: ModelSettings) -> ModelSpec:
        """The architecture an experiment's model settings describe."""
        return cls(
            kind=settings.kind,
            task=settings.task,
            hidden=tuple(settings.hidden),
            window=settings.window,
            kernel_size=settings.kernel_size,
            dropout=settings.dropout,
        )


class MLP(nn.Module):
    """Rows of ``n_features`` → ``n_outputs`` (logits or one regression value)."""

    def __init__(self, n_features: int, n_outputs: int, hidden: tuple[int, ...], dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LayerNorm(size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


class TemporalCNN(nn.Module):
    """Windows ``(batch, window, n_features)`` → ``n_outputs``.

    Causal-padded 1-D convolutions over time with growing dilation, then global average pooling
    over time: fault signatures and degradation trends at several time scales.
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        channels: tuple[int, ...],
        kernel_size: int,
        dropout: float,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = n_features
        for level, size in enumerate(channels):
            dilation = 2**level
            blocks += [
                nn.ConstantPad1d(((kernel_size - 1) * dilation, 0), 0.0),  # causal
                nn.Conv1d(width, size, kernel_size, dilation=dilation),
                nn.GroupNorm(1, size),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            width = size
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x.transpose(1, 2))  # (batch, features, time)
        out: torch.Tensor = self.head(h.mean(dim=2))
        return out


class SimpleCNN(nn.Module):
    """NIID-Bench's "simple CNN" for 28x28 grey images (``SimpleCNNMNIST`` in its code).

    Two 5x5 convolutions with 6 and 16 channels, each followed by ReLU and 2x2 max-pooling,
    then fully connected layers 256 → 120 → 84 → ``n_classes`` with ReLU between them
    (Li et al., "Federated Learning on Non-IID Data Silos: An Experimental Study", ICDE 2022).
    Input ``(batch, 1, 28, 28)``; a ``(batch, 28, 28)`` or ``(batch, 784)`` input is reshaped.
    """

    def __init__(self, n_classes: int = 10, channels: int = 1, side: int = 28) -> None:
        super().__init__()
        self.channels, self.side = channels, side
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        flat = 16 * ((((side - 4) // 2) - 4) // 2) ** 2  # 16 * 4 * 4 for 28x28
        self.classifier = nn.Sequential(
            nn.Linear(flat, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, self.channels, self.side, self.side)
        out: torch.Tensor = self.classifier(self.features(x).flatten(1))
        return out


class InLabelUnits(nn.Module):
    """A regression model whose output is in the label's units: ``mean + std * inner(x)``.

    ``mean`` and ``std`` are the label's statistics pooled from the factories' profiles,
    kept as buffers so they travel with the weights (every factory holds the same values, so
    averaging leaves them alone). Without them a network starting near 0 needs thousands of
    steps just to reach the label's scale (remaining life in cycles, say).
    """

    def __init__(self, inner: nn.Module, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        self.inner = inner
        # Shape (1,), not a scalar: Flower's arrays and safetensors keep 1-d tensors as is.
        self.register_buffer("target_mean", torch.tensor([float(mean)]))
        self.register_buffer("target_std", torch.tensor([float(std) or 1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(x) * self.target_std + self.target_mean
        return out


def build_model(
    spec: ModelSpec,
    n_features: int,
    n_classes: int | None,
    target: tuple[float, float] | None = None,
) -> nn.Module:
    """The model for ``spec``; ``n_classes`` is required for classification.

    ``target`` (mean, std) puts a regression model's output in the label's units.
    """
    if spec.task == "classification":
        if not n_classes or n_classes < 2:
            raise ValueError("classification needs at least 2 classes")
        outputs = n_classes
    else:
        outputs = 1
    inner: nn.Module
    if spec.kind == "mlp":
        inner = MLP(n_features, outputs, spec.hidden, spec.dropout)
    else:
        inner = TemporalCNN(n_features, outputs, spec.hidden, spec.kernel_size, spec.dropout)
    if spec.task == "regression":
        return InLabelUnits(inner, *(target or (0.0, 1.0)))
    return inner


def loss_function(task: Task) -> nn.Module:
    return nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()


def initial_model(spec: RunSpec, plan: FeaturePlan) -> torch.nn.Module:
    """The run's first global model, the same in every process that builds it from the spec
    (a factory's local-only baseline starts from it too)."""
    norm = spec.normalization
    target = (
        (norm.mean[plan.label], norm.std[plan.label])
        if spec.model.task == "regression" and plan.label in norm.mean
        else None
    )
    classes = len(plan.classes) if plan.classes else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        return build_model(ModelSpec.of(spec.model), plan.n_features, classes, target)
