"""A PNG of an experiment's metrics per round: people would rather look than read."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fedpark.experiments.protocol import FactoryResult, RoundReport


def _factories(report: RoundReport, source: str) -> list[FactoryResult]:
    return report.train_factories if source == "train" else report.evaluate_factories


def _metrics(report: RoundReport, source: str) -> dict[str, float]:
    return report.train if source == "train" else report.evaluate


def plot_rounds(reports: list[RoundReport], path: Path, title: str) -> Path:
    """Train loss and evaluation metrics per round, aggregated and per factory."""
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    numbers = [r.round for r in reports]
    metrics = sorted({k for rep in reports for k in rep.evaluate} - {"loss"})
    panels = ["train_loss", "loss", *metrics]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], panels, strict=True):
        source = "train" if metric == "train_loss" else "evaluate"
        factories = sorted({f.org for rep in reports for f in _factories(rep, source)})
        for org in factories:
            values = [
                next((f.metrics.get(metric) for f in _factories(rep, source) if f.org == org), None)
                for rep in reports
            ]
            ax.plot(numbers, values, marker=".", linewidth=1, alpha=0.6, label=org)
        ax.plot(
            numbers,
            [_metrics(rep, source).get(metric) for rep in reports],
            marker="o",
            color="black",
            linewidth=2.5,
            label="federated (weighted)",
        )
        ax.set_title("train loss" if metric == "train_loss" else f"evaluation {metric}")
        ax.set_xlabel("round")
        ax.set_xticks(numbers)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
