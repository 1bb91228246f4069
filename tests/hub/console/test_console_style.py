"""The console's colours are readable: WCAG 2.1 AA contrast (4.5:1 for text) for every
pairing its style sheet uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = (
    Path(__file__).resolve().parents[3] / "hub" / "console" / "static" / "console.css"
).read_text()
VARIABLES = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", CSS))


def luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def colour(name: str) -> str:
    return VARIABLES.get(name, name)


# (text, background): body text, hints, links, status colours, buttons, the header bar and
# the tinted table cells and message boxes.
PAIRS = [
    ("ink", "bg"),
    ("muted", "bg"),
    ("muted", "panel"),
    ("accent", "bg"),
    ("accent", "panel"),
    ("accent-ink", "accent"),
    ("ok", "bg"),
    ("bad", "bg"),
    ("warn", "bg"),
    ("#ffffff", "bad"),
    ("#ffffff", "#102a43"),
    ("ink", "#e3f4e8"),
    ("ink", "#fbe3e1"),
    ("ink", "#eef8f1"),
    ("ink", "#fcefee"),
    ("bad", "#fcefee"),
    ("warn", "#fff8e1"),
]


def test_the_style_sheet_defines_the_palette() -> None:
    assert {"ink", "muted", "bg", "panel", "accent", "accent-ink", "ok", "bad", "warn"} <= set(
        VARIABLES
    )


@pytest.mark.parametrize(("text", "background"), PAIRS, ids=["/".join(p) for p in PAIRS])
def test_text_contrast_meets_wcag_aa(text: str, background: str) -> None:
    assert contrast(colour(text), colour(background)) >= 4.5
