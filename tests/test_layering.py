"""Dependencies go one way, and the command line starts without the heavy stacks."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# package -> FedPark packages (and third-party roots) it must never import
FORBIDDEN = {
    "contracts": {"fedpark.hub", "fedpark.clients", "fedpark.datasets", "fedpark.experiments"},
    "datasets": {"fedpark.hub", "fedpark.clients", "fedpark.experiments"},
    "experiments": {"fedpark.hub", "fedpark.clients"},
    "clients": {"fedpark.hub"},
    "hub": {
        "fedpark.clients",
        "fedpark.datasets",
        "fedpark.experiments",
        "torch",
        # Flower's training side; the hub uses only its control plane (Control API client,
        # FAB building, protobuf messages).
        "flwr.app",
        "flwr.serverapp",
        "flwr.clientapp",
        "flwr.server",
        "flwr.client",
        "flwr.simulation",
    },
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_go_one_way(package: str) -> None:
    offenders = [
        f"{source.relative_to(REPO)} imports {name}"
        for source in (REPO / package).rglob("*.py")
        for name in _imports(source)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[package])
    ]
    assert offenders == []


def test_no_pickle_anywhere() -> None:
    for package in FORBIDDEN:
        for source in (REPO / package).rglob("*.py"):
            assert not {"pickle", "cPickle", "dill"} & _imports(source), source


def test_cli_starts_without_the_heavy_stacks() -> None:
    probe = (
        "import sys, json\n"
        "from fedpark.clients.cli.main import _load_plugins\n"
        "_load_plugins()\n"
        "print(json.dumps(sorted(m for m in ('fastapi', 'sqlalchemy', 'pyarrow', 'torch',"
        " 'flwr', 'minio', 'uvicorn') if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []
