"""``fedpark``: one command line for every role.

The client groups live here; the hub registers its own groups (``hub``, ``storage``) through
the ``fedpark.cli`` entry point, so installing the client never imports the hub.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points

import typer
from rich.console import Console
from rich.text import Text

from fedpark.clients.cli import (
    admin,
    contracts,
    data,
    data_sources,
    demo,
    experiments,
    factory,
    models,
)
from fedpark.experiments.protocol.errors import HubError

err = Console(stderr=True)

app = typer.Typer(
    name="fedpark",
    help=(
        "FedPark: dataset contracts, federated training and signed models for industrial "
        "parks.\n\nClient commands talk to a hub over HTTP: set FEDPARK_HUB (its URL) and "
        "FEDPARK_TOKEN (your API token), or pass --hub and --token."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
admin.register(app)
contracts.register(app)
experiments.register(app)
models.register(app)
factory.register(app)
data.register(app)
data_sources.register(data.app)
demo.register(app)


def _load_plugins() -> None:
    for ep in entry_points(group="fedpark.cli"):
        ep.load()(app)


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version as v

        typer.echo(f"fedpark {v('fedpark')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        is_eager=True,  # answered before typer asks for a command
        callback=_print_version,
    ),
) -> None:
    """FedPark's command line."""


def quiet_libraries() -> None:
    """A command that logs at INFO (``factory join``, ``hub serve``) shows FedPark's lines,
    not one per HTTP request."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main() -> None:
    quiet_libraries()
    _load_plugins()
    try:
        app()
    except HubError as exc:
        err.print(Text.assemble(("error:", "red"), f" {exc}"), highlight=False, soft_wrap=True)
        sys.exit(1)
