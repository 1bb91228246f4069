"""Options and output helpers shared by the client commands."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fedpark.clients.api import HubClient

out = Console()

HubOpt = Annotated[str | None, typer.Option("--hub", envvar="FEDPARK_HUB", help="The hub's URL.")]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="FEDPARK_TOKEN",
        help="Your API token (prefer the env variable).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def client(hub: str | None, token: str | None) -> HubClient:
    return HubClient(hub, token)


def show(
    rows: Sequence[dict[str, Any]] | dict[str, Any],
    columns: Sequence[str],
    as_json: bool,
    title: str | None = None,
) -> None:
    """Print records as a table (or JSON for scripts)."""
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    items = [rows] if isinstance(rows, dict) else list(rows)
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for item in items:
        table.add_row(*(_cell(item.get(c)) for c in columns))
    out.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
