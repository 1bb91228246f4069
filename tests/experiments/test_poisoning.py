"""One of five factories poisons its updates: Krum holds, FedAvg falls (the positive control).

Runs ``benchmarks/learning/poisoning.py --quick`` (FedPark's own ServerApp and ClientApp on
Flower's simulation engine, five simulated Tennessee Eastman plants) and reads its results.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "learning" / "poisoning.py"


@pytest.mark.timeout(900)
def test_krum_survives_a_poisoning_factory_that_breaks_fedavg(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=840,
        cwd=SCRIPT.parent,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = json.loads((tmp_path / "poisoning.json").read_text())["table"]
    print(json.dumps(table, indent=1))
    assert table["fedavg"]["change"] < -20  # the attack works: FedAvg visibly degrades
    assert table["fedavg"]["clean"] > 60  # ... from a model that had learned
    assert abs(table["krum"]["change"]) <= 2  # Krum keeps within 2 points of its clean run
    assert table["krum"]["attacked"] > table["fedavg"]["attacked"] + 20
