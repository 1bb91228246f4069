"""The console's SVG charts do not flatter and stay legible: the y axis starts at 0, and the
legend sits above the plot area, where no line can cross it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fedpark.hub.console.charts import Series, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def _chart(names: list[str]) -> ET.Element:
    series = [
        Series(name, [(1, 0.81 + i / 100), (2, 0.84 + i / 100), (3, 0.9)])
        for i, name in enumerate(names)
    ]
    chart = str(line_chart("Evaluation metrics per round", series, x_max=3))
    return ET.fromstring(chart)  # noqa: S314 - our own SVG


def _plot_top(svg: ET.Element) -> float:
    return min(float(line.get("y1", "0")) for line in svg.iter(f"{SVG}line"))


def test_the_y_axis_starts_at_zero() -> None:
    svg = _chart(["accuracy", "macro_f1"])
    ticks = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "tick"]
    assert "0" in ticks  # not cut just below 0.81


def test_the_legend_is_above_the_plot_area_even_in_several_rows() -> None:
    for names in (["accuracy", "macro_f1"], [f"a long metric name {i}" for i in range(6)]):
        svg = _chart(names)
        top = _plot_top(svg)
        entries = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "legend-entry"]
        assert [e.find(f"{SVG}text").text for e in entries] == names  # type: ignore[union-attr]
        for entry in entries:
            label = entry.find(f"{SVG}text")
            assert label is not None and float(label.get("y", "0")) + 3 < top
        lines = [p.get("points", "") for p in svg.iter(f"{SVG}polyline")]
        ys = [float(point.split(",")[1]) for points in lines for point in points.split()]
        assert min(ys) >= top  # every line is drawn inside the plot area, below the legend
        width = float(svg.get("viewBox", "0 0 0 0").split()[2])
        xs = [float(t.get("x", "0")) for t in svg.iter(f"{SVG}text") if t.get("class") == "legend"]
        assert max(xs) < width
