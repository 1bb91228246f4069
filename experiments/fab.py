"""The Flower App Bundle (FAB) of a FedPark run, built in memory.

It holds only a ``pyproject.toml``: the ServerApp and ClientApp are FedPark's installed code
(``fedpark.experiments.server_app``, ``fedpark.clients.client_app``), so the SuperLink runs
without installing anything per run (``--disable-runtime-dependency-installation``).
"""

from __future__ import annotations

import hashlib

from flwr.cli.build import build_fab_from_files

from fedpark.experiments.run_spec import SPEC_KEY

PYPROJECT = f"""\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "fedpark-run"
version = "1.0.0"
description = "A FedPark federated run"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "fedpark"

[tool.flwr.app.components]
serverapp = "fedpark.experiments.server_app:app"
clientapp = "fedpark.clients.client_app:app"

[tool.flwr.app.config]
{SPEC_KEY} = "{{}}"
"""


def build_fab() -> tuple[bytes, str]:
    """The FAB's bytes and their sha256 (Flower identifies FABs by it)."""
    data, _ = build_fab_from_files({"pyproject.toml": PYPROJECT.encode()})
    return data, hashlib.sha256(data).hexdigest()
