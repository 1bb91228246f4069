"""Server-drawn SVG charts: no JavaScript library, readable without colour (markers, labels),
described for screen readers, and backed by a table on the same page."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("circle", "square", "diamond", "triangle")


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]`` (1, 2, 5 times 10^k steps)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value < high + step * 0.999:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _marker(kind: str, x: float, y: float, colour: str, label: str) -> str:
    tip = f"<title>{escape(label)}</title>"
    if kind == "square":
        return (
            f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" '
            f'fill="{colour}">{tip}</rect>'
        )
    if kind == "diamond":
        pts = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="{colour}">{tip}</polygon>'
    if kind == "triangle":
        pts = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y + 4:.1f} {x - 5:.1f},{y + 4:.1f}"
        return f'<polygon points="{pts}" fill="{colour}">{tip}</polygon>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">{tip}</circle>'


def _legend_rows(
    series: Sequence[Series], left: float, right: float
) -> list[list[tuple[int, float]]]:
    """Where each series' legend entry goes: rows of (series index, x), as wide as the chart."""
    rows: list[list[tuple[int, float]]] = []
    x = right  # start a row with the first entry
    for i, s in enumerate(series):
        entry = 18 + 7.5 * len(s.name)
        if x + entry > right and (not rows or rows[-1]):
            rows.append([])
            x = left + 8.0
        rows[-1].append((i, x))
        x += entry
    return rows


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    x_label: str = "round",
    x_max: float | None = None,
    width: int = 520,
    height: int = 260,
) -> Markup:
    """One SVG line chart; an empty chart says that no round has reported yet.

    The y axis starts at 0 (every metric FedPark reports is non-negative: an axis cut just
    below the lowest value makes a small change look large). The legend sits above the plot
    area, in rows, so that no line is drawn through it."""
    left, right, bottom = 56, 16, 44
    legend = _legend_rows(series, left, width - right)
    top = 30 + 16 * len(legend)
    height += 16 * len(legend)
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [p for s in series for p in s.points if math.isfinite(p[1])]
    ident = "chart-" + "".join(c if c.isalnum() else "-" for c in title.lower())
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<text x="{left}" y="18" class="chart-title">{escape(title)}</text>',
    ]
    if not points:
        out.append(f'<desc id="{ident}-desc">No round has reported yet.</desc>')
        out.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" '
            'class="chart-empty">waiting for the first round…</text></svg>'
        )
        return Markup("".join(out))  # noqa: S704 - every value above is escaped or numeric
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x_hi = max(x_max or 0, max(xs), 2)
    x_ticks = nice_ticks(1, x_hi, 6)
    x_ticks = [t for t in x_ticks if t == int(t) and 1 <= t <= x_hi] or [1]
    y_ticks = nice_ticks(min(0.0, min(ys)), max(ys))
    y_lo, y_hi = y_ticks[0], y_ticks[-1]

    def sx(x: float) -> float:
        return left + (x - 1) / max(x_hi - 1, 1) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h

    summary = "; ".join(
        f"{s.name}: " + ", ".join(f"round {int(x)} {y:.4g}" for x, y in s.points) for s in series
    )
    out.append(f'<desc id="{ident}-desc">{escape(summary)}</desc>')
    for t in y_ticks:
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" '
            'class="grid"/>'
            f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end" class="tick">'
            f"{t:.4g}</text>"
        )
    for t in x_ticks:
        out.append(
            f'<text x="{sx(t):.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="tick">'
            f"{int(t)}</text>"
        )
    out.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" '
        'class="axis"/>'
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" class="tick">'
        f"{escape(x_label)}</text>"
    )
    for i, s in enumerate(series):
        colour, marker = PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]
        finite = [(x, y) for x, y in s.points if math.isfinite(y)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in finite)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out.extend(
            _marker(marker, sx(x), sy(y), colour, f"{s.name}, round {int(x)}: {y:.4g}")
            for x, y in finite
        )
    for row, entries in enumerate(legend):
        y = 30 + 16 * row + 2
        for i, x in entries:
            colour, marker = PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]
            name = series[i].name
            out.append(f'<g class="legend-entry">{_marker(marker, x, y, colour, name)}')
            out.append(f'<text x="{x + 9}" y="{y + 4}" class="legend">{escape(name)}</text></g>')
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every value above is escaped or numeric
