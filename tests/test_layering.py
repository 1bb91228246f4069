"""Dependencies go one way, and the command line starts without the heavy stacks."""

from __future__ import annotations

import ast
import functools
import json
import re
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
        "fedpark.experiments",  # but its protocol module (ALLOWED)
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


# Exceptions to the above: what crosses a process boundary between the hub, FedPark's Flower
# apps and the CLI (run spec, round reports, the model manifest, the API's bodies, the node
# config, the hub client) is typed once, in a package free of torch and Flower that the hub,
# the Flower apps and the CLI import.
PROTOCOL_PACKAGE = "fedpark.experiments.protocol"
ALLOWED = {"hub": PROTOCOL_PACKAGE}
PROTOCOL = REPO / "experiments" / "protocol"
# Standard library and third-party roots the protocol may use.
PROTOCOL_THIRD_PARTY = {
    "__future__",
    "collections",
    "contextlib",
    "cryptography",
    "ctypes",  # processes: the kernel ties children to their parent
    "dataclasses",
    "datetime",
    "enum",
    "hashlib",
    "httpx",  # the hub client's transport
    "importlib",
    "json",
    "logging",
    "os",
    "pathlib",
    "pyarrow",
    "pydantic",
    "re",
    "signal",
    "socket",
    "subprocess",
    "sys",
    "time",
    "types",
    "typing",
    "urllib",
}


@functools.cache  # each test walks the same files: parse each once
def _imports(path: Path) -> frozenset[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return frozenset(names)


def _within(name: str, package: str | None) -> bool:
    return package is not None and (name == package or name.startswith(package + "."))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_go_one_way(package: str) -> None:
    offenders = [
        f"{source.relative_to(REPO)} imports {name}"
        for source in (REPO / package).rglob("*.py")
        for name in _imports(source)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[package])
        and not _within(name, ALLOWED.get(package))
    ]
    assert offenders == []


# Inside the hub: the API does not know the console (the console registers its error page).
HUB_INNER = {"api": {"fedpark.hub.console"}, "services": {"fedpark.hub.api", "fedpark.hub.console"}}


@pytest.mark.parametrize("part", sorted(HUB_INNER))
def test_inside_the_hub_dependencies_go_one_way(part: str) -> None:
    sources = list((REPO / "hub" / part).rglob("*.py"))
    assert sources, part
    offenders = [
        f"{source.relative_to(REPO)} imports {name}"
        for source in sources
        for name in _imports(source)
        if any(_within(name, bad) for bad in HUB_INNER[part])
    ]
    assert offenders == []


def test_the_protocol_needs_only_contracts() -> None:
    """The hub may import it: it must not pull torch, Flower or the apps in."""
    modules = sorted(PROTOCOL.rglob("*.py"))
    assert len(modules) >= 8, modules  # spec, reports, manifest, client...: never passes empty
    for module in modules:
        imported = {
            name if name.startswith("fedpark") else name.split(".")[0] for name in _imports(module)
        }
        fedpark = {name for name in imported if name.startswith("fedpark")}
        assert all(
            name.startswith("fedpark.contracts") or _within(name, PROTOCOL_PACKAGE)
            for name in fedpark
        ), (module, fedpark)
        assert imported - fedpark <= PROTOCOL_THIRD_PARTY, (module, imported - fedpark)


def test_importing_the_protocol_loads_neither_torch_nor_flower() -> None:
    probe = (
        "import sys, json\n"
        "import fedpark.experiments.protocol\n"
        "print(json.dumps(sorted(m for m in ('torch', 'flwr', 'fedpark.hub', 'fedpark.clients',"
        " 'fedpark.experiments.models', 'fastapi') if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


def test_one_http_client_talks_to_the_hub() -> None:
    """The CLI, the ClientApp and the ServerApp's reporter reach the hub through the
    protocol's :class:`HubClient` only: no other module of theirs speaks HTTP."""
    client = PROTOCOL / "client.py"
    # PromptGrid speaks no HTTP: it imports httpx only to catch what Flower's own HTTP grid
    # raises when the SuperLink goes away (SuperLinkLostError).
    catches_only = REPO / "experiments" / "grid.py"
    speakers = [
        str(source.relative_to(REPO))
        for package in ("clients", "experiments", "contracts", "datasets")
        for source in (REPO / package).rglob("*.py")
        if source not in (client, catches_only)
        and {"httpx", "requests", "urllib.request"} & _imports(source)
    ]
    assert speakers == []
    assert "httpx.Client" not in catches_only.read_text()
    assert "httpx.HTTPError" in catches_only.read_text()
    assert "httpx" in _imports(client)


@pytest.mark.integration  # a fresh Python process
def test_the_cli_loads_the_hub_client_without_pyarrow() -> None:
    """The hub client and the API's bodies are pydantic and httpx only: every command that
    talks to the hub starts without loading the Arrow stack."""
    probe = (
        "import sys, json\n"
        "import fedpark.experiments.protocol.client\n"
        "import fedpark.experiments.protocol.node\n"
        "print(json.dumps(sorted(m for m in ('pyarrow', 'numpy', 'cryptography', 'torch')"
        " if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


# Loaders that unpickle: torch.load without weights_only, numpy with allow_pickle, pandas'
# read_pickle, joblib. Weights travel as safetensors, tables as Arrow, documents as JSON.
UNPICKLING = re.compile(
    r"torch\.load\((?![^)]*weights_only=True)|allow_pickle\s*=\s*True|read_pickle|joblib\.load"
)


def test_no_pickle_anywhere() -> None:
    for package in (*FORBIDDEN, "benchmarks"):
        for source in (REPO / package).rglob("*.py"):
            assert not {"pickle", "cPickle", "dill", "cloudpickle", "joblib"} & _imports(source), (
                source
            )
            assert not UNPICKLING.search(source.read_text()), source


def test_pyarrow_is_at_a_patched_version() -> None:
    """CVE-2023-47248 (arbitrary code from an IPC or Parquet file's extension type metadata)
    is fixed from 14.0.1; FedPark reads files factories are handed, so it pins far above."""
    import pyarrow

    major, minor, patch = (int(p) for p in pyarrow.__version__.split(".")[:3])
    assert (major, minor, patch) >= (26, 0, 1)


@pytest.mark.integration  # a fresh Python process
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
