"""Generated press-line sensor data: plants that differ, and faults each has only partly seen.

A stand-in for real plant data in the demo and the tests: every plant has its own operating
point and noise, and its own subset of fault types, so a model trained on one plant alone does
not recognize the faults that only other plants have seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

FAULTS = {0: "normal", 1: "die overheating", 2: "hydraulic leak", 3: "bearing wear"}
MACHINES = ("press-01", "press-02", "press-03")


@dataclass(frozen=True)
class Plant:
    name: str
    seed: int
    faults: tuple[int, ...]  # the fault types this plant has seen
    temp_offset: float = 0.0
    noise: float = 1.0


def plants(count: int) -> list[Plant]:
    """``count`` plants, each with its own seed, operating point and subset of faults."""
    subsets = [(1,), (2,), (3,), (1, 2), (2, 3), (1, 3)]
    return [
        Plant(
            f"plant-{i + 1}",
            seed=100 + i,
            faults=subsets[i % len(subsets)],
            temp_offset=4.0 * (i % 3) - 4.0,
            noise=1.0 + 0.15 * (i % 4),
        )
        for i in range(count)
    ]


def press_line(plant: Plant, rows: int, fault_share: float = 0.3) -> pa.Table:
    """One plant's sensor log: 1 row a second, faults in runs of 30 to 120 rows."""
    rng = np.random.default_rng(plant.seed)
    fault = np.zeros(rows, dtype=np.int8)
    at = 0
    while at < rows:
        length = int(rng.integers(30, 121))
        if rng.random() < fault_share and plant.faults:
            fault[at : at + length] = rng.choice(plant.faults)
        at += length
    noise = plant.noise
    temp = 180 + plant.temp_offset + rng.normal(0, 3 * noise, rows) + 25 * (fault == 1)
    pressure = 210 + rng.normal(0, 4 * noise, rows) - 30 * (fault == 2)
    force = 2400 + rng.normal(0, 60 * noise, rows) - 300 * (fault == 2)
    vibration = np.abs(rng.normal(2.0, 0.4 * noise, rows)) * np.where(fault == 3, 3.0, 1.0)
    current = 120 + rng.normal(0, 3 * noise, rows) + 10 * (fault == 1) + 6 * (fault == 3)
    cycle = 4.0 + rng.normal(0, 0.1 * noise, rows) + 0.4 * (fault == 2)
    start = 1_767_225_600_000 + plant.seed * 10**9  # 2026-01-01, apart per plant
    operators = np.array([f"{plant.name}-op{i}" for i in range(12)])
    return pa.table(
        {
            "ts": pa.array(
                start + np.arange(rows, dtype=np.int64) * 1000, pa.timestamp("ms", tz="UTC")
            ),
            "machine": pa.array(np.array(MACHINES)[rng.integers(0, len(MACHINES), rows)]),
            "temp_die": pa.array(temp.astype(np.float32)),
            "pressure": pa.array(pressure),
            "force": pa.array(force),
            "vibration": pa.array(vibration.astype(np.float32)),
            "current": pa.array(current.astype(np.float32)),
            "cycle_time": pa.array(cycle.astype(np.float32)),
            "fault": pa.array(fault),
            "serial": pa.array(plant.seed * 10**7 + np.arange(rows, dtype=np.int64)),
            "operator": pa.array(operators[rng.integers(0, len(operators), rows)]),
        }
    )


def press_line_contract(
    owner: str,
    *,
    contract_id: str = "press-line-sensors",
    version: str = "1.0.0",
    experiment_orgs: list[str] | None = None,
    model_download_orgs: list[str] | None = None,
    min_factories: int = 2,
) -> dict[str, Any]:
    """The contract the generated data meets (a document to submit to the hub)."""

    def sensor(name: str, dtype: str, unit: str, low: float, high: float) -> dict[str, Any]:
        return {
            "name": name,
            "type": dtype,
            "nullable": False,
            "unit": unit,
            "rules": {"min": low, "max": high, "finite": True},
        }

    return {
        "id": contract_id,
        "version": version,
        "title": "Press line sensors with fault labels",
        "description": "One row a second per press: die temperature, hydraulics, drive and "
        "cycle time, labelled with the fault the maintenance log recorded.",
        "domain": "smart-factory",
        "owner": owner,
        "columns": [
            {
                "name": "ts",
                "type": "timestamp[ms, tz=UTC]",
                "nullable": False,
                "role": "time",
                "rules": {"monotonic": "strictly_increasing"},
            },
            {
                "name": "machine",
                "type": "string",
                "nullable": False,
                "rules": {"allowed_values": list(MACHINES), "regex": "press-[0-9]{2}"},
            },
            sensor("temp_die", "float32", "degC", 100, 300),
            sensor("pressure", "float64", "bar", 0, 400),
            sensor("force", "float64", "kN", 0, 5000),
            sensor("vibration", "float32", "mm/s", 0, 50),
            sensor("current", "float32", "A", 0, 300),
            sensor("cycle_time", "float32", "s", 0, 20),
            {
                "name": "fault",
                "type": "int8",
                "nullable": False,
                "role": "label",
                "description": "; ".join(f"{k} {v}" for k, v in FAULTS.items()),
                "rules": {"allowed_values": list(FAULTS)},
            },
            {
                "name": "serial",
                "type": "int64",
                "nullable": False,
                "role": "id",
                "rules": {"unique": True},
            },
            {"name": "operator", "type": "string", "role": "pii"},
        ],
        "rows": {"min_rows": 100},
        "policy": {
            "purposes": ["federated-training", "evaluation"],
            "experiment_orgs": experiment_orgs or [],
            "model_download_orgs": model_download_orgs or [],
            "min_factories": min_factories,
        },
    }
