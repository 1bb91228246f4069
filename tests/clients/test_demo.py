"""``fedpark demo``: the README's main job, every component started for real."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from harness import clean_env, fedpark_argv, pids_mentioning

pytestmark = pytest.mark.integration


def test_demo_trains_and_verifies_a_model_then_stops_everything(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = subprocess.run(
        fedpark_argv(
            "demo", "--data-dir", str(folder), "--factories", "2", "--rounds", "2", "--hours", "3"
        ),
        env=clean_env(COLUMNS="80"),  # a narrow terminal: what it prints must still paste
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    said = " ".join(result.stdout.split())  # sentences wrap at 80 columns
    assert "approved and signed by the steward" in said
    assert "verified the hub's signature" in said
    assert "FedPark demo finished" in said
    assert "scaffold, temporal CNN" in said
    # each plant: alone vs federated on its held-out rows and on the faults it never saw
    assert "What each plant gained by federating" in said
    assert said.count("→") >= 3 and "never saw" in said  # the title, then one per plant
    assert (folder / "predictions.parquet").exists()
    # the plant's own figure on runs it never trained on, beside the one the manifest signs
    assert re.search(r"\d+% of them named right, against \d+% in the signed manifest", said)
    manifest = json.loads((folder / "model" / "manifest.json").read_text())
    assert len(manifest["rounds"]) == 2 and manifest["participants"] == ["plant-1", "plant-2"]
    assert (folder / "metrics.png").read_bytes().startswith(b"\x89PNG")
    assert pids_mentioning(str(folder)) == []  # hub, storage, SuperLink and SuperNodes all gone
    lines = result.stdout.splitlines()
    # not a terminal: one plain line per round, then the verdict on a line of its own
    rounds = [x for x in lines if x.startswith(("round 1/2: ", "round 2/2: "))]
    assert len(rounds) == 2 and all("macro_f1" in x and "factories 2" in x for x in rounds)
    assert "finished: 2 rounds" in lines
    assert "Metrics per round" not in result.stdout  # no table drawn for a log (nor twice)
    assert f"  logs: {folder / 'logs'}" in lines  # paths whole on one line, to copy
    # The verify command it prints, pasted as printed (one line, even at 80 columns).
    [line] = [x for x in result.stdout.splitlines() if " model verify " in x]
    program, *arguments = shlex.split(line)
    assert program.endswith("fedpark")  # its name on PATH, or the venv's path
    verify = subprocess.run(
        fedpark_argv(*arguments),
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0 and "verified" in verify.stdout

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    refused = subprocess.run(
        fedpark_argv("demo", "--data-dir", str(foreign)),
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and (foreign / "precious.txt").exists()
