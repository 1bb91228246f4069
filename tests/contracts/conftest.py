from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from samples import contract_data, sensor_table

from fedpark.contracts import Contract


@pytest.fixture
def contract() -> Contract:
    return Contract.model_validate(contract_data())


@pytest.fixture
def good_parquet(tmp_path: Path) -> Path:
    path = tmp_path / "good.parquet"
    pq.write_table(sensor_table(), path)
    return path
