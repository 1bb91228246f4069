"""A CSV dialect forced at `factory join` reaches every ClientApp through the node config,
so a round reads the factory's file exactly as the command line did."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedpark.contracts.dialect import CsvOptions
from fedpark.contracts.infer import infer_contract
from fedpark.experiments.client_app import RefusedError, _validated
from fedpark.experiments.protocol import ProblemKind
from fedpark.experiments.protocol.node import NodeConfig

GERMAN = (
    "Zeit;Temperatur (°C);Drücke_bar\n2026-01-01T00:00:00;21,5;1,25\n2026-01-01T00:01:00;22,0;1,3\n"
)


def test_forced_options_travel_in_the_node_config_by_name() -> None:
    forced = CsvOptions.parse(";", ",", "cp1252")
    config = NodeConfig(data_path=Path("linie.csv"), **NodeConfig.csv_fields(forced))
    flower = config.flower()
    assert {k: v for k, v in flower.items() if k.startswith("csv-")} == {
        "csv-delimiter": "semicolon",
        "csv-decimal": "comma",
        "csv-encoding": "cp1252",
    }
    assert NodeConfig.of(flower).csv_options == forced
    assert NodeConfig.of({"data-path": "x.csv"}).csv_options == CsvOptions()  # detect all


def test_an_unknown_option_in_the_node_config_is_refused() -> None:
    with pytest.raises(ValueError, match="the delimiter must be one of"):
        NodeConfig.of({"data-path": "x.csv", "csv-delimiter": "#"})


def test_the_client_app_validates_with_the_forced_dialect(tmp_path: Path) -> None:
    data = tmp_path / "linie.csv"
    data.write_bytes(GERMAN.encode("cp1252"))
    contract = infer_contract(data, contract_id="linie", owner="acme")
    work = tmp_path / "work"
    _validated(contract, data, work)  # detected: semicolons, decimal commas, cp1252
    _validated(contract, data, work, CsvOptions.parse(delimiter="semicolon"))
    # Another forced dialect is another validation (not the cached verdict of the first).
    with pytest.raises(RefusedError) as refused:
        _validated(contract, data, work, CsvOptions.parse(delimiter="comma"))
    assert refused.value.kind is ProblemKind.DATA_UNREADABLE
