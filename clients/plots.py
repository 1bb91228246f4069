"""A PNG of an experiment's metrics per round: people would rather look than read."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from fedpark.experiments.protocol import FactoryResult, RoundReport


def _factories(report: RoundReport, source: str) -> list[FactoryResult]:
    return report.train_factories if source == "train" else report.evaluate_factories


def _metrics(report: RoundReport, source: str) -> dict[str, float]:
    return report.train if source == "train" else report.evaluate


# Scores whose whole range is 0 to 1: their axes show all of it.
UNIT_SCORES = frozenset({"accuracy", "macro_f1", "f1", "precision", "recall"})


def metric_axis(ax: Axes, metric: str) -> None:
    """Start a metric's axis at 0 (every metric FedPark reports is non-negative): an axis cut
    just below the lowest value makes a small change look large. Scores from 0 to 1 show
    their whole range."""
    low, high = ax.get_ylim()
    if metric in UNIT_SCORES:
        ax.set_ylim(0, max(1.0, high))
    else:
        ax.set_ylim(min(0.0, low), high * 1.05 if high > 0 else high)  # headroom at the top


def plot_rounds(reports: list[RoundReport], path: Path, title: str) -> Path:
    """Train loss and evaluation metrics per round, aggregated and per factory."""
    import matplotlib.pyplot as plt

    fig = rounds_figure(reports, title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rounds_figure(reports: list[RoundReport], title: str) -> Figure:
    """One panel per metric, every metric axis from 0; the legend below the panels, clear
    of every line."""
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
        metric_axis(ax, metric)
    handles, labels = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=min(len(labels), 6))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1, 1, 1))  # room below the panels for the legend
    return fig
