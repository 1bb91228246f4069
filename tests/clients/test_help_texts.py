"""Every command's ``--help`` reads as written: no help text missing, none eaten by markup."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest
from clirunner import CliRunner, command_of
from rich.text import Text

from fedpark.clients.cli.main import _load_plugins, app

# A word, a space, then a lone period: what is left of "bind [default 127.0.0.1]." once rich
# took the brackets for markup.
STRAY_PERIOD = re.compile(r"\w \.(\s|$)")


def _commands() -> list[tuple[list[str], click.Command]]:
    if not any(group.name == "hub" for group in app.registered_groups):
        _load_plugins()  # the hub's groups, as the installed `fedpark` has them

    def walk(command: click.Command, path: list[str]) -> Iterator[tuple[list[str], click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])

    return list(walk(command_of(app), []))


COMMANDS = _commands()


def test_the_walk_sees_every_group() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"hub serve", "experiment launch", "contract show", "demo"} <= names


@pytest.mark.parametrize(
    "path, command", COMMANDS, ids=[" ".join(p) or "fedpark" for p, _ in COMMANDS]
)
def test_help_renders_as_written(path: list[str], command: click.Command) -> None:
    assert (command.help or command.short_help or "").strip(), f"{path}: no help"
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help" and not param.hidden:
            text = (param.help or "").strip()
            assert text, f"{path} {param.opts}: no help"
            # rich reads help as markup: "[default x]" would vanish from the screen
            assert Text.from_markup(text).plain == text, f"{path} {param.opts}: {text!r}"
    shown = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert shown.exit_code == 0, shown.output
    bad = [line for line in shown.output.splitlines() if STRAY_PERIOD.search(line)]
    assert not bad, bad


def test_version_needs_no_command() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"fedpark {version('fedpark')}\n"


def test_the_width_follows_columns_when_printing_not_when_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rich keeps the COLUMNS its console saw when made: a first import under another COLUMNS
    (a command run from another, a test worker) would fix every table's width after it."""
    from fedpark.clients.cli.common import _Console

    monkeypatch.setenv("COLUMNS", "120")
    console = _Console(soft_wrap=True)
    monkeypatch.setenv("COLUMNS", "250")
    assert console.width == 250
    monkeypatch.delenv("COLUMNS")
    assert console.width == 120  # a pipe or a log, nothing said: 120, not Rich's 80
    assert _Console(width=90).width == 90
