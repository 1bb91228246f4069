"""A drafted contract as YAML that says what was guessed and why, in comments.

The header lists the files the draft was inferred from (and how each CSV file was read) and
what the steward must check; each column's comment gives the reasons for its role and rules.
Comments never hold values of ``pii`` columns: the notes they come from name none
(see :mod:`fedpark.contracts.roles`). Loading the YAML gives back the draft's contract.
"""

from __future__ import annotations

from typing import Any

import yaml

from fedpark.contracts.bounds import RANGE_MARGIN
from fedpark.contracts.document import dump_yaml
from fedpark.contracts.infer import Draft

COMMENT_WIDTH = 96


def _comment(text: str, indent: str = "") -> list[str]:
    """``text`` as comment lines (a note never ends a comment early: no line breaks)."""
    words, lines, line = text.replace("\r", " ").replace("\n", " ").split(), [], ""
    for word in words:
        if line and len(indent) + len(line) + len(word) + 3 > COMMENT_WIDTH:
            lines.append(line)
            line = "  " + word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return [f"{indent}# {part}" for part in lines if part]


def header(draft: Draft) -> list[str]:
    rows = sum(f.rows for f in draft.files)
    files = "1 file" if len(draft.files) == 1 else f"{len(draft.files)} files"
    lines = [f"Drafted by `fedpark contract infer` from {files}, {rows} rows:"]
    for f in draft.files:
        read = f"; read as {f.dialect.describe()}" if f.dialect else ""
        lines.append(f"  - {f.name} ({f.rows} rows{read})")
    ranges = (
        f"ranges: each sensor's minimum and maximum in these files, widened by "
        f"{RANGE_MARGIN:.0%} of the span; a plant outside them breaks the contract: set the "
        "bounds a sensor can physically reach"
        if draft.ranges
        else "ranges: left out (--no-ranges); add min and max where a sensor has physical bounds"
    )
    checks = [
        "units: the data does not say them; give every measured column its unit",
        "roles: id and pii columns never reach a model; see the note above each column",
        ranges,
        "allowed_values: a value not listed breaks the contract",
        "policy: who may run experiments and download models (none yet)",
    ]
    out = ["\n".join(_comment(line)) for line in lines]
    out.append("# Check before submitting it:")
    out += ["\n".join(_comment(f"- {check}")) for check in checks]
    return out


def render_yaml(draft: Draft) -> str:
    """The draft as YAML with comments; it loads as ``draft.contract``."""
    data: dict[str, Any] = yaml.safe_load(dump_yaml(draft.contract))
    parts = header(draft)
    columns_done = False
    for key, value in data.items():
        if key != "columns":
            parts.append(_dump({key: value}).rstrip("\n"))
            continue
        parts.append("columns:")
        for column in value:
            for note in draft.notes.get(str(column["name"]), []):
                parts += _comment(note)
            parts.append(_dump([column]).rstrip("\n"))
        columns_done = True
    assert columns_done
    return "\n".join(parts) + "\n"


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
