"""``fedpark demo``: the README's main job, on real components."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from harness import clean_env, fedpark_argv

pytestmark = pytest.mark.integration


def test_demo_starts_a_park_and_stops_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    result = subprocess.run(
        fedpark_argv("demo", "--no-keep-running", "--data-dir", str(data_dir)),
        env=clean_env(COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FedPark hub is up" in result.stdout
    assert "rhine-steel" in result.stdout and "researcher" in result.stdout
    assert "Hub and storage stopped" in result.stdout
    assert (data_dir / "bootstrap-admin-token").exists()
    # A second run starts afresh in the same folder; a foreign folder is refused.
    again = subprocess.run(
        fedpark_argv("demo", "--no-keep-running", "--data-dir", str(data_dir)),
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    refused = subprocess.run(
        fedpark_argv("demo", "--no-keep-running", "--data-dir", str(foreign)),
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and (foreign / "precious.txt").exists()
