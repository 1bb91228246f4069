"""Tennessee Eastman plants from tep-studio: real simulator runs, each plant its own faults."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from clirunner import CliRunner

from fedpark.clients.cli.main import app as cli
from fedpark.contracts import Contract, validate_file, validate_table
from fedpark.datasets import tep


def test_every_fault_is_seen_somewhere_and_no_plant_sees_them_all() -> None:
    plants = tep.plants(5, modes=tep.MODES)
    seen = [set(p.faults) for p in plants]
    assert set().union(*seen) == set(tep.OBSERVABLE_FAULTS)
    assert all(0 < len(s) < len(tep.OBSERVABLE_FAULTS) for s in seen)
    for fault in tep.OBSERVABLE_FAULTS:  # two plants each by default beyond three plants
        assert sum(fault in s for s in seen) == 2
    assert [p.mode for p in plants] == list(tep.MODES[:5])
    assert len({p.seed for p in plants}) == 5
    assert tep.plants(5, modes=tep.MODES) == plants  # deterministic
    assert tep.plants(5, modes=tep.MODES, seed=1) != plants


def test_the_cli_default_faults_are_the_observable_ones() -> None:
    """The CLI spells the list out so that `--help` needs no simulator import."""
    from fedpark.clients.cli.data_sources import DEFAULT_FAULTS

    assert ",".join(map(str, tep.OBSERVABLE_FAULTS)) == DEFAULT_FAULTS


def test_three_plants_see_disjoint_faults() -> None:
    seen = [set(p.faults) for p in tep.plants(3)]
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2]) and not (seen[0] & seen[2])
    assert 3 not in set().union(*seen)  # unobservable faults are left out by default


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 0}, "at least one plant"),
        ({"count": 2, "faults": [1, 22]}, "unknown TEP faults [22]"),
        ({"count": 2, "modes": ["mode7"]}, "unknown operating modes ['mode7']"),
    ],
)
def test_impossible_plants_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        tep.plants(**kwargs)


def test_a_plant_history_is_one_timeline_of_shuffled_runs() -> None:
    plant = tep.Plant("plant-9", seed=5, mode="mode2", faults=(1, 4, 7))
    runs = tep.plant_runs(plant, hours=6, normal_runs=2)
    assert sorted(r.fault for r in runs) == [0, 0, 1, 4, 7]
    assert all(b.start - a.start > dt.timedelta(hours=6) for a, b in itertools.pairwise(runs))
    assert {r.mode for r in runs} == {"mode2"} and len({r.seed for r in runs}) == 5
    twice = tep.plant_runs(plant, hours=6, onset=1, normal_runs=1, runs_per_fault=2)
    assert sorted(r.fault for r in twice) == [0, 1, 1, 4, 4, 7, 7]
    assert len({r.seed for r in twice}) == 7  # each run its own noise
    assert tep.runs_needed([plant], normal_runs=1, runs_per_fault=2, test=False) == 7


def test_the_default_runs_follow_the_literature_convention() -> None:
    """48 h runs, the fault from hour 8 (labelled normal before it), as Braatz's sets."""
    plant = tep.Plant("plant-9", seed=5, mode="mode1", faults=(1,))
    assert {(r.hours, r.onset) for r in tep.plant_runs(plant)} == {(48.0, 8.0)}
    assert {(r.hours, r.onset) for r in tep.test_runs(["mode1"], faults=(1,))} == {(48.0, 8.0)}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tep.GeneratedSet:
    plants = [
        tep.Plant("plant-1", seed=11, mode="mode1", faults=(1,)),
        tep.Plant("plant-2", seed=22, mode="mode2", faults=(4,)),
    ]
    extra = [tep.RunPlan("elsewhere", "mode1", 5, 4, 1.0, 0.5, dt.datetime(2027, 1, 1))]
    return tep.generate(
        tmp_path_factory.mktemp("tep"),
        plants,
        hours=2,
        onset=1,
        normal_runs=1,
        test_hours=1,  # held-out runs: 1 h, the fault from half an hour
        test_onset=0.5,
        workers=1,  # in this process: two workers are spawned processes (test below)
        extra=extra,
    )


@pytest.mark.integration  # spawns the simulator's worker processes
def test_runs_simulated_on_two_processes_are_the_runs_of_one() -> None:
    start = dt.datetime(2027, 1, 1)
    plans = [
        tep.RunPlan("plant-1", "mode1", 3, 0, 0.5, 0.0, start),
        tep.RunPlan("plant-2", "mode2", 4, 4, 0.5, 0.2, start),
    ]
    assert tep.simulate(plans, workers=2).equals(tep.simulate(plans, workers=1))


def test_extra_runs_are_returned_not_written(generated: tep.GeneratedSet) -> None:
    extra = generated.extra
    assert extra is not None and set(extra["plant"].to_pylist()) == {"elsewhere"}
    assert set(extra["fault"].to_pylist()) == {0, 4} and extra.num_rows == 20  # 1 h / 3 min
    for path in [*generated.plant_files.values(), generated.test_file]:
        assert "elsewhere" not in set(pq.read_table(path)["plant"].to_pylist())
    assert not list(generated.contract_file.parent.glob("elsewhere*"))


def test_generated_files_meet_their_contract(generated: tep.GeneratedSet) -> None:
    contract = Contract.model_validate(json.loads(generated.contract_file.read_text()))
    assert contract.domain.value == "process-industry"
    assert generated.test_file is not None
    for path in [*generated.plant_files.values(), generated.test_file]:
        report = validate_file(contract, path).report
        assert report.passed, report
        assert report.rows == pq.ParquetFile(path).metadata.num_rows > 0


def test_labels_follow_the_simulator_and_each_plant_has_only_its_faults(
    generated: tep.GeneratedSet,
) -> None:
    for plant in generated.plants:
        table = pq.read_table(generated.plant_files[plant.name])
        assert set(table["fault"].to_pylist()) == {0, *plant.faults}
        assert set(table["operating_mode"].to_pylist()) == {plant.mode}
        assert set(table["plant"].to_pylist()) == {plant.name}
        times = table["time"].cast(pa.int64()).to_numpy()
        assert (np.diff(times) > 0).all()
        for run in set(table["run"].to_pylist()):
            rows = table.filter(pc.equal(table["run"], run))
            hours = (rows["time"].cast(pa.int64()).to_numpy() - times.min()) / 3.6e6
            faulty = rows["fault"].to_numpy() > 0
            if faulty.any():  # normal before the onset, the fault from an hour in onwards
                start = hours[0]
                assert not faulty[hours - start < 0.99].any()
                assert faulty[hours - start > 1.1].all()
    test = pq.read_table(generated.test_file)
    assert set(test["fault"].to_pylist()) == {0, 1, 4}
    assert set(test["operating_mode"].to_pylist()) == {"mode1", "mode2"}


def test_a_fault_moves_the_measurements(generated: tep.GeneratedSet) -> None:
    """IDV(1) steps the A/C feed ratio: the A feed flow (XMEAS 1) shifts after its onset."""
    test = pq.read_table(generated.test_file)
    mode1 = test.filter(pc.equal(test["operating_mode"], "mode1"))
    normal = mode1.filter(pc.equal(mode1["fault"], 0))["a_feed"].to_numpy()
    faulty = mode1.filter(pc.equal(mode1["fault"], 1))["a_feed"].to_numpy()
    assert abs(faulty.mean() - normal.mean()) > 3 * normal.std() / np.sqrt(len(faulty))


def test_the_contract_refuses_data_that_breaks_it(generated: tep.GeneratedSet) -> None:
    contract = Contract.model_validate(json.loads(generated.contract_file.read_text()))
    table = pq.read_table(generated.plant_files["plant-1"])
    # Pressure logged in Pa instead of kPa, and a fault code the contract does not know.
    wrong = table.set_column(
        table.schema.get_field_index("reactor_pressure"),
        "reactor_pressure",
        pc.multiply(table["reactor_pressure"], 1000.0),
    )
    labels = table["fault"].to_numpy().copy()
    labels[:5] = 3
    wrong = wrong.set_column(wrong.schema.get_field_index("fault"), "fault", pa.array(labels))
    report = validate_table(contract, wrong).report
    assert not report.passed
    rules = report.rule_counts()
    assert rules["max"] == table.num_rows and rules["allowed_values"] == 5


def test_cli_writes_plants_a_test_set_and_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "park"
    result = CliRunner().invoke(
        cli,
        [
            "data",
            "tep",
            "--out",
            str(out),
            "--plants",
            "2",
            "--faults",
            "1,2",
            "--hours",
            "1",
            "--onset",
            "0.5",
            "--normal-runs",
            "0",
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "plant-1" in result.output and "contract" in result.output
    plants = json.loads((out / "plants.json").read_text())
    assert sorted(f for p in plants for f in p["faults"]) == [1, 2]
    assert (out / "test" / "tep.parquet").exists()
    assert (out / "plant-2" / "tep.parquet").exists()


def test_cli_refuses_an_onset_after_the_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["data", "tep", "--out", str(tmp_path), "--hours", "2", "--onset", "3"]
    )
    assert result.exit_code == 2
    assert "onset" in result.output
