"""Typer's ``CliRunner``, with each app's click command built once.

``typer.testing.CliRunner.invoke`` rebuilds the whole click tree from the commands' signatures
at every call: for FedPark's CLI that is ~0.1 s of ``typing.get_type_hints`` per invoke, and
the unit tier invokes it a couple of hundred times. The installed ``fedpark`` builds it once
per process, as this runner does per app and per set of registered commands (the hub's
plugin groups join ``app`` when first loaded, and then the tree is built again).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import IO, Any

import click
import typer
from click.testing import CliRunner as ClickCliRunner
from click.testing import Result

# app -> (its groups and commands when built, the command built); weak: an app that goes
# away takes its tree along, and no later app can inherit it.
_BUILT: weakref.WeakKeyDictionary[typer.Typer, tuple[tuple[int, ...], click.Command]] = (
    weakref.WeakKeyDictionary()
)


def _shape(app: typer.Typer) -> tuple[int, ...]:
    """How many groups and commands ``app`` and, depth first, its groups hold."""
    shape = [len(app.registered_groups), len(app.registered_commands)]
    for group in app.registered_groups:
        if group.typer_instance is not None:
            shape += _shape(group.typer_instance)
    return tuple(shape)


def command_of(app: typer.Typer) -> click.Command:
    """``app``'s click command, built at the first call and again when commands join it
    (or any of its groups)."""
    shape = _shape(app)
    built = _BUILT.get(app)
    if built is None or built[0] != shape:
        built = (shape, typer.main.get_command(app))
        _BUILT[app] = built
    return built[1]


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
