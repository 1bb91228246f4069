"""Sample sensor data and contracts shared by the contract tests and others."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedpark.experiments.protocol.package import ModelPackage

import numpy as np
import pyarrow as pa

ROWS = 5000


def sensor_table(rows: int = ROWS, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "ts": pa.array(np.arange(rows, dtype="int64") * 1000, pa.timestamp("ms", tz="UTC")),
            "machine": pa.array(rng.choice(["press-1", "press-2", "press-3"], rows)),
            "temp": pa.array(rng.normal(60, 5, rows).astype("float32")),
            "pressure": pa.array(
                np.where(rng.random(rows) < 0.02, None, rng.normal(3, 0.2, rows)),
                pa.float64(),
            ),
            "fault": pa.array(rng.integers(0, 4, rows).astype("int32")),
            "serial": pa.array(np.arange(rows)),
            "operator": pa.array([f"op{i % 7}" for i in range(rows)]),
            "window": pa.array(
                list(rng.normal(0, 1, (rows, 3)).astype("float32")), pa.list_(pa.float32(), 3)
            ),
        }
    )


def contract_data() -> dict[str, Any]:
    return {
        "id": "press-sensors",
        "version": "1.0.0",
        "title": "Press line sensors",
        "owner": "acme",
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
                "rules": {
                    "allowed_values": ["press-1", "press-2", "press-3"],
                    "regex": "press-[0-9]+",
                },
            },
            {
                "name": "temp",
                "type": "float32",
                "unit": "degC",
                "rules": {"min": 0, "max": 120, "finite": True},
            },
            {
                "name": "pressure",
                "type": "float64",
                "unit": "bar",
                "rules": {"min": 0, "max": 10, "max_null_fraction": 0.05},
            },
            {
                "name": "fault",
                "type": "int32",
                "role": "label",
                "rules": {"allowed_values": [0, 1, 2, 3]},
            },
            {"name": "serial", "type": "int64", "role": "id", "rules": {"unique": True}},
            {"name": "operator", "type": "string", "role": "pii"},
            {
                "name": "window",
                "type": "fixed_size_list<float32>[3]",
                "rules": {"min": -10, "max": 10, "finite": True},
            },
        ],
        "rows": {"min_rows": 100},
        "policy": {"experiment_orgs": ["acme"], "model_download_orgs": ["acme"]},
    }


# Every Arrow type the contract grammar supports, nested ones included.
ALL_TYPES = [
    pa.int8(),
    pa.int16(),
    pa.int32(),
    pa.int64(),
    pa.uint8(),
    pa.uint64(),
    pa.float16(),
    pa.float32(),
    pa.float64(),
    pa.bool_(),
    pa.string(),
    pa.large_string(),
    pa.binary(),
    pa.large_binary(),
    pa.date32(),
    pa.date64(),
    pa.timestamp("s"),
    pa.timestamp("ns", tz="UTC"),
    pa.timestamp("ms", tz="Europe/Berlin"),
    pa.timestamp("us", tz="+01:00"),
    pa.duration("ms"),
    pa.time32("s"),
    pa.time64("ns"),
    pa.decimal128(10, 2),
    pa.decimal256(50, 10),
    pa.dictionary(pa.int32(), pa.string()),
    pa.dictionary(pa.int8(), pa.string(), ordered=True),
    pa.list_(pa.float32()),
    pa.list_(pa.field("item", pa.int64(), nullable=False)),
    pa.large_list(pa.string()),
    pa.list_(pa.float32(), 3),
    pa.struct([pa.field("a", pa.int32()), pa.field("b", pa.list_(pa.string()), nullable=False)]),
    pa.list_(pa.struct([pa.field("x", pa.float64())])),
]


def package_for(contract: dict[str, Any]) -> ModelPackage:
    """The package of a default model (the launch's defaults) on ``contract``, with unit
    statistics: what a ServerApp sends when it finishes."""
    from fedpark.contracts import Contract
    from fedpark.experiments.features import plan_from_contract
    from fedpark.experiments.protocol.package import ModelPackage, Normalization
    from fedpark.experiments.protocol.plan import ModelSettings

    settings = ModelSettings()
    plan = plan_from_contract(Contract.model_validate(contract), settings.task, settings.series)
    norm = Normalization(
        mean=dict.fromkeys(plan.numeric, 0.0), std=dict.fromkeys(plan.numeric, 1.0)
    )
    return ModelPackage(architecture=settings, features=plan.described(norm), contract=contract)
