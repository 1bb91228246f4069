"""Options and output helpers shared by the client commands."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from fedpark.experiments.protocol.client import HubClient, check_token
from fedpark.experiments.protocol.errors import InvalidTokenError


class _Console(Console):
    """Lines are never broken by FedPark (soft wrap): a path or a command stays whole, to
    copy, and a terminal folds what is too long. Written to a log or a pipe, Rich would
    assume 80 columns; tables there get 120 unless COLUMNS says otherwise.

    COLUMNS is read when printing, not when the module is imported: Rich's own console keeps
    the value it saw at construction, so a first import under another COLUMNS (one command
    run from another, a test runner) would fix the width for the process."""

    def __init__(self, *, width: int | None = None, **kwargs: Any) -> None:
        super().__init__(width=width, **kwargs)
        self._width = width  # not the COLUMNS of the moment of import

    @property
    def width(self) -> int:
        if self._width is None:
            columns = os.environ.get("COLUMNS", "")
            if columns.isdigit() and int(columns) > 0:
                return int(columns)
            if not self.is_terminal:
                return 120
        return Console.width.fget(self)  # type: ignore[attr-defined,no-any-return]

    @width.setter
    def width(self, width: int) -> None:
        Console.width.fset(self, width)  # type: ignore[attr-defined]


out = _Console(soft_wrap=True)

# Text from a person, a file or the hub (a column name, a contract id, a problem's detail)
# is never read as rich markup: `[a-z0-9]` in a pattern would vanish. Print it as a Text,
# with markup=False, or through `literal` inside a markup string.
literal = escape

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


Body = TypeVar("Body", bound=BaseModel)


def client(hub: str | None, token: str | None) -> HubClient:
    return HubClient(hub, token)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` (as is: never read as markup) as an error; the exit to raise."""
    out.print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def cannot_read(exc: OSError | ValueError, signature: Path) -> str:
    """Why a signature (or the files next to it) could not be read, in FedPark's words: the
    exception's text quotes a JSON parser's position or the OS's phrasing, not what to do."""
    if isinstance(exc, OSError):
        return f"cannot read {exc.filename or 'a file'}: missing, or no permission to read it"
    return f"{signature} is not JSON: use the signature file the hub gave"


def body(schema: type[Body], /, **fields: Any) -> Body:
    """A request body built from the command's options, checked here with the hub's own
    rules: a mistake is named by its option before anything is sent."""
    try:
        return schema.model_validate(fields)
    except ValidationError as exc:
        from fedpark.contracts.messages import describe

        said = [
            f"{'.'.join(str(p) for p in e['loc']).replace('_', '-') or 'input'}: {describe(e)}"
            for e in exc.errors()
        ]
        raise typer.BadParameter("; ".join(said)) from None


def show(
    rows: Sequence[BaseModel | Mapping[str, Any]] | BaseModel,
    columns: Sequence[str],
    as_json: bool,
    title: str | None = None,
) -> None:
    """Print the hub's answer as a table (or JSON for scripts: every field, as the hub sent it)."""
    one = isinstance(rows, BaseModel)
    listed: Sequence[BaseModel | Mapping[str, Any]] = (
        [rows] if isinstance(rows, BaseModel) else rows
    )
    items = [r.model_dump(mode="json") if isinstance(r, BaseModel) else dict(r) for r in listed]
    if as_json:
        typer.echo(json.dumps(items[0] if one else items, indent=2, default=str))
        return
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for item in items:
        table.add_row(*(_cell(item.get(c)) for c in columns))
    out.print(table)


def _cell(value: Any) -> Text:
    """A cell as literal text (a name from the hub is never read as markup)."""
    if value is None:
        return Text("-")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    return Text(str(value))


def read_token(path: Path) -> str:
    """An API token kept in a file (a CRLF or a trailing newline is not part of it).

    The token's shape is checked here, so a mistake names the file; a file others may read
    is used, with a warning (the token is then theirs too)."""
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError):
        raise typer.BadParameter(f"cannot read {path}", param_hint="--token-file") from None
    token = text.strip()
    how = "(`fedpark token create -o FILE` writes one)"
    if not token or len(token.split()) != 1:
        raise typer.BadParameter(
            f"{path} must hold one API token and nothing else {how}", param_hint="--token-file"
        )
    try:
        check_token(token)
    except InvalidTokenError as exc:
        raise typer.BadParameter(f"{path}: {exc} {how}", param_hint="--token-file") from None
    if path.stat().st_mode & 0o077:
        typer.secho(
            f"warning: {path} may be read by other users of this machine; "
            f"`chmod 600 {path}` keeps the token yours",
            fg="yellow",
            err=True,
        )
    return token
