"""FedPark installs under the `fedpark` namespace only: nothing shadows `datasets` & co."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("hub", "clients", "contracts", "datasets", "experiments")


def test_no_top_level_module_is_shadowed(tmp_path: Path) -> None:
    probe = (
        "import importlib.util, json\n"
        f"names = {list(PACKAGES)!r}\n"
        "specs = {n: importlib.util.find_spec(n) for n in names}\n"
        "print(json.dumps({n: s.origin if s else None for n, s in specs.items()}))\n"
        "import fedpark.datasets, fedpark.hub\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    for name, origin in __import__("json").loads(result.stdout).items():
        assert origin is None or str(REPO) not in origin, f"`import {name}` finds FedPark"


def test_every_package_folder_is_installed() -> None:
    """setuptools installs the packages pyproject.toml lists, no other: a new folder that is
    not listed is missing from every install (an editable one fails to build at all)."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {
        "fedpark." + ".".join(init.parent.relative_to(REPO).parts)
        for package in PACKAGES
        for init in (REPO / package).rglob("__init__.py")
    }
    assert folders == set(config["packages"])


def _generated() -> dict[str, int]:
    """Build output in the checkout (build/, *.egg-info), with modification times."""
    paths = [*REPO.glob("build/**/*"), *REPO.glob("*.egg-info/**/*"), *REPO.glob("*.egg-info")]
    return {str(p): p.stat().st_mtime_ns for p in paths if p.exists()}


@pytest.mark.integration  # builds a wheel with pip: seconds, and a process
def test_wheel_holds_only_the_fedpark_namespace(tmp_path: Path) -> None:
    # Built from a copy: setuptools writes build/ and *.egg-info into the tree it builds.
    source = tmp_path / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "*.egg-info", "__pycache__", ".mypy_cache", ".ruff_cache"
        ),
    )
    wheels = tmp_path / "wheels"
    generated_before = _generated()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("fedpark-*.whl")
    assert _generated() == generated_before, "the build wrote into the source tree"
    names = zipfile.ZipFile(wheel).namelist()
    assert all(n.startswith(("fedpark/", "fedpark-")) for n in names), names
    shipped = {n for n in names if n.endswith(".py")}
    for package in PACKAGES:  # every source file of every package is in the wheel
        for source in (REPO / package).rglob("*.py"):
            relative = source.relative_to(REPO).as_posix()
            assert f"fedpark/{relative}" in shipped, f"{relative} is missing from the wheel"
    assert "fedpark/hub/storage/migrations/script.py.mako" in names
    console = REPO / "hub" / "console"  # the console's pages, style sheet and script
    for asset in [*console.glob("templates/*.html"), *console.glob("static/*")]:
        assert f"fedpark/{asset.relative_to(REPO).as_posix()}" in names, asset.name
