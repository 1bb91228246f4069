"""Typer's ``CliRunner``, with each app's click command built once.

``typer.testing.CliRunner.invoke`` rebuilds the whole click tree from the commands' signatures
at every call: for FedPark's CLI that is ~0.1 s of ``typing.get_type_hints`` per invoke, and
the unit tier invokes it a couple of hundred times. The installed ``fedpark`` builds it once
per process, as this runner does per app and per set of registered commands (the hub's
plugin groups join ``app`` when first loaded, and then the tree is built again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import IO, Any

import click
import typer
from click.testing import CliRunner as ClickCliRunner
from click.testing import Result

_BUILT: dict[tuple[int, int, int], click.Command] = {}


def command_of(app: typer.Typer) -> click.Command:
    """``app``'s click command, built at the first call and again when commands join it."""
    key = (id(app), len(app.registered_groups), len(app.registered_commands))
    if key not in _BUILT:
        _BUILT[key] = typer.main.get_command(app)
    return _BUILT[key]


class CliRunner(ClickCliRunner):
    """``typer.testing.CliRunner``'s interface on a command built once."""

    def invoke(  # type: ignore[override]  # takes the Typer app, as typer's runner does
        self,
        app: typer.Typer,
        args: str | Sequence[str] | None = None,
        input: str | bytes | IO[Any] | None = None,
        env: Mapping[str, str | None] | None = None,
        catch_exceptions: bool = True,
        color: bool = False,
        **extra: Any,
    ) -> Result:
        return super().invoke(
            command_of(app),
            args=args,
            input=input,
            env=env,
            catch_exceptions=catch_exceptions,
            color=color,
            **extra,
        )
