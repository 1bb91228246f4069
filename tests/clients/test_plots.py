"""The metrics PNG does not flatter: every metric axis starts at 0 (scores show 0 to 1), and
the legend sits below the panels, over no line."""

from __future__ import annotations

from pathlib import Path

from fedpark.clients.plots import plot_rounds, rounds_figure
from fedpark.experiments.protocol import FactoryResult, RoundReport


def _reports() -> list[RoundReport]:
    reports = []
    for number, f1 in ((1, 0.81), (2, 0.84), (3, 0.86)):  # a small gain, high on the scale
        metrics = {"loss": 0.5 - f1 / 10, "accuracy": f1 + 0.05, "macro_f1": f1}
        reports.append(
            RoundReport(
                round=number,
                contributors=["plant-1", "plant-2"],
                train={"train_loss": 0.4 - number / 100},
                evaluate=metrics,
                train_factories=[
                    FactoryResult(org=org, node_id=i, examples=100, metrics={"train_loss": 0.4})
                    for i, org in enumerate(("plant-1", "plant-2"), 1)
                ],
                evaluate_factories=[
                    FactoryResult(org=org, node_id=i, examples=20, metrics=metrics)
                    for i, org in enumerate(("plant-1", "plant-2"), 1)
                ],
            )
        )
    return reports


def test_every_metric_axis_starts_at_zero_and_scores_show_their_range() -> None:
    figure = rounds_figure(_reports(), "test")
    panels = {ax.get_title(): ax.get_ylim() for ax in figure.axes}
    assert set(panels) == {
        "train loss",
        "evaluation loss",
        "evaluation accuracy",
        "evaluation macro_f1",
    }
    assert all(low == 0 for low, _ in panels.values()), panels
    assert panels["evaluation macro_f1"] == (0, 1.0)
    assert panels["evaluation accuracy"] == (0, 1.0)


def test_the_legend_is_below_every_panel(tmp_path: Path) -> None:
    figure = rounds_figure(_reports(), "test")
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    [legend] = figure.legends
    box = legend.get_window_extent(renderer)
    assert all(box.y1 <= ax.get_window_extent(renderer).y0 for ax in figure.axes)
    assert {t.get_text() for t in legend.get_texts()} == {
        "plant-1",
        "plant-2",
        "federated (weighted)",
    }
    assert plot_rounds(_reports(), tmp_path / "m.png", "t").read_bytes()[:4] == b"\x89PNG"
