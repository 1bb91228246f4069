"""`fedpark contract infer` over every plant's file, and European/Korean CSVs through
`contract infer`, `contract validate` and `factory join`'s options, as a person sees them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
import yaml
from clirunner import CliRunner

from fedpark.clients.cli import contracts as contracts_cli
from fedpark.clients.cli.csv_dialect import csv_options
from fedpark.clients.cli.main import app
from fedpark.clients.supernode import supernode_argv
from fedpark.experiments.protocol.node import NodeConfig

runner = CliRunner()
PLANTS = ("plant-1", "plant-2", "plant-3")


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def tep_park(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three TEP plants in modes 1-3, each with one fault: 2 runs of 1 h per plant (~2 s)."""
    out = tmp_path_factory.mktemp("tep") / "park"
    code, output = _invoke(
        "data", "tep", "--out", str(out), "--plants", "3", "--faults", "1,4,7",
        "--hours", "1", "--onset", "0.5", "--normal-runs", "1", "--no-test", "--workers", "1",
    )  # fmt: skip
    assert code == 0, output
    return out


def _violations(contract: Path, data: Path) -> int:
    code, output = _invoke("contract", "validate", str(contract), str(data), "--json")
    assert code in (0, 1), output
    return len(json.loads(output)["report"]["violations"])


def test_a_draft_from_every_plant_validates_every_plant(tep_park: Path, tmp_path: Path) -> None:
    draft = tmp_path / "tep.yaml"
    code, output = _invoke(
        "contract", "infer", str(tep_park), "-o", str(draft), "--id", "tep", "--owner", "acme"
    )
    assert code == 0, output
    assert output.splitlines()[0] == (
        f"wrote {draft} from 3 files (120 rows): 57 columns (53 feature, 2 id, 1 label, 1 time)"
    )
    document = yaml.safe_load(draft.read_text())
    columns = {c["name"]: c for c in document["columns"]}
    assert columns["plant"]["role"] == "id" and columns["run"]["role"] == "id"
    assert columns["operating_mode"]["rules"]["allowed_values"] == ["mode1", "mode2", "mode3"]
    for plant in PLANTS:
        data = tep_park / plant / "tep.parquet"
        assert _violations(draft, data) == 0, plant
    assert (
        "# role id: its name says it identifies a plant: constant per file, differs across files"
        in draft.read_text()
    )


def test_a_draft_from_one_plant_makes_no_feature_of_its_identity(
    tep_park: Path, tmp_path: Path
) -> None:
    draft = tmp_path / "plant-1.yaml"
    one = tep_park / "plant-1" / "tep.parquet"
    code, output = _invoke(
        "contract", "infer", str(one), "-o", str(draft), "--id", "tep", "--owner", "acme"
    )
    assert code == 0, output
    columns = {c["name"]: c for c in yaml.safe_load(draft.read_text())["columns"]}
    assert columns["plant"]["role"] == "id" and columns["run"]["role"] == "id"
    assert "rules" not in columns["operating_mode"]  # one mode is not the set of modes
    # Ranges from one plant still refuse another plant's readings: that is what the header
    # asks the steward to check (the same file from every plant passes: the test above).
    assert _violations(draft, tep_park / "plant-2" / "tep.parquet") > 0


def test_ranges_can_be_left_out(tep_park: Path, tmp_path: Path) -> None:
    draft = tmp_path / "no-ranges.yaml"
    code, output = _invoke(
        "contract", "infer", str(tep_park / "plant-1" / "tep.parquet"), "-o", str(draft),
        "--id", "tep", "--owner", "acme", "--no-ranges",
    )  # fmt: skip
    assert code == 0, output
    columns = {c["name"]: c for c in yaml.safe_load(draft.read_text())["columns"]}
    assert not any("min" in c.get("rules", {}) for c in columns.values())
    # The label's classes are plant-1's (a set, not a range): plant-2's other faults break
    # that rule alone, as the draft's note says (infer from every plant's file).
    assert columns["fault"]["rules"]["allowed_values"] == sorted(
        set(pq.read_table(tep_park / "plant-1" / "tep.parquet")["fault"].to_pylist())
    )
    code, output = _invoke(
        "contract", "validate", str(draft), str(tep_park / "plant-2" / "tep.parquet"), "--json"
    )
    broken = {(v["column"], v["rule"]) for v in json.loads(output)["report"]["violations"]}
    assert broken == {("fault", "allowed_values")}, broken


GERMAN = (
    "Zeit;Temperatur (°C);Drücke_bar\n2026-01-01T00:00:00;21,5;1,25\n2026-01-01T00:01:00;22,0;1,3\n"
)

# A semicolon file forced to commas: its lines split into more fields than its header.
READ_AS_COMMAS = (
    "error: linie-3.csv has 3 fields on line 2 where the header has 1 (read as comma-separated "
    "(forced), decimal point, cp1252 (Western European); if that is wrong, name it with "
    "--delimiter, --decimal or --encoding)"
)


def test_a_german_export_is_read_and_said_so(tmp_path: Path) -> None:
    data = tmp_path / "linie-3.csv"
    data.write_bytes(GERMAN.encode("cp1252"))
    draft = tmp_path / "linie.yaml"
    code, output = _invoke(
        "contract", "infer", str(data), "-o", str(draft), "--id", "linie", "--owner", "acme"
    )
    assert code == 0, output
    assert output.splitlines()[1] == (
        "linie-3.csv: read as semicolon-separated, decimal comma, cp1252 (Western European)"
    )
    assert "# - linie-3.csv (2 rows; read as semicolon-separated, decimal comma, cp1252" in (
        draft.read_text()
    )
    code, output = _invoke("contract", "validate", str(draft), str(data))
    assert code == 0, output
    assert output.splitlines()[1] == (
        "read as semicolon-separated, decimal comma, cp1252 (Western European)"
    )
    code, output = _invoke("contract", "validate", str(draft), str(data), "--delimiter", "comma")
    assert code == 2
    assert output.strip() == READ_AS_COMMAS
    code, output = _invoke("contract", "validate", str(draft), str(data), "--json")
    assert json.loads(output)["read_as"].startswith("semicolon-separated, decimal comma")
    code, output = _invoke(
        "contract", "infer", str(data), "-o", str(draft), "--id", "linie", "--owner", "acme",
        "--delimiter", "comma",
    )  # fmt: skip
    assert code == 2
    assert output.strip() == READ_AS_COMMAS


def test_korean_column_names_work_through_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "라인.csv"
    data.write_bytes(
        "시간;온도\n2026-01-01T00:00:00;1,5\n2026-01-01T00:01:00;2,5\n".encode("cp949")
    )
    draft = tmp_path / "ko.yaml"
    assert (
        _invoke("contract", "infer", str(data), "-o", str(draft), "--id", "ko", "--owner", "a1")[0]
        == 0
    )
    assert [c["name"] for c in yaml.safe_load(draft.read_text())["columns"]] == ["시간", "온도"]
    code, output = _invoke("contract", "validate", str(draft), str(data), "--profile")
    assert code == 0 and "PASSED" in output and "온도" in output, output
    assert "cp949 (Korean)" in output


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--delimiter", "#", "the delimiter must be one of: comma (,), semicolon (;), tab"),
        ("--decimal", "x", "the decimal mark must be point (.) or comma (,)"),
        ("--encoding", "klingon", "unknown encoding"),
    ],
)  # fmt: skip
def test_a_wrong_option_is_a_usage_error(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    data = tmp_path / "a.csv"
    data.write_text("a\n1\n")
    code, output = _invoke(
        "contract", "infer", str(data), "-o", str(tmp_path / "a.yaml"), "--id", "aa",
        "--owner", "acme", option, value,
    )  # fmt: skip
    assert code == 2 and f"Invalid value for {option}: {message}" in output


def test_files_that_do_not_share_columns_are_named(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.csv").write_text("x,z\n1,2\n")
    code, output = _invoke(
        "contract", "infer", str(tmp_path), "-o", str(tmp_path / "d.yaml"), "--id", "xy",
        "--owner", "acme",
    )  # fmt: skip
    assert code == 2
    assert output.strip() == (
        "error: b.csv does not have the columns of a.csv: it lacks 'y' and has 'z'; infer from "
        "files that share their columns"
    )


def test_factory_join_hands_the_options_to_its_client_apps() -> None:
    code, output = _invoke("factory", "join", "--help")
    assert code == 0
    for option in ("--delimiter", "--decimal", "--encoding"):
        assert option in output
    forced = csv_options("semicolon", "comma", "cp1252")
    config = NodeConfig(data_path=Path("linie.csv"), **NodeConfig.csv_fields(forced))
    argv = supernode_argv("127.0.0.1:9092", 9094, config.flower())
    assert (
        'csv-delimiter="semicolon" csv-decimal="comma" csv-encoding="cp1252"'
        in (argv[argv.index("--node-config") + 1])
    )


class _Hub:
    """The hub as `contract declare` uses it: the approved contract, nothing declared."""

    def __init__(self, document: dict) -> None:
        self.document = document

    def __enter__(self) -> _Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def contract(self, ref: object) -> SimpleNamespace:
        return SimpleNamespace(document=self.document)

    def declare_dataset(self, ref: object, declaration: object) -> None:
        raise AssertionError("nothing is declared under a name the hub would refuse")


def test_declare_says_what_a_dataset_name_may_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "linie-3.csv"
    data.write_bytes(GERMAN.encode("cp1252"))
    draft = tmp_path / "linie.yaml"
    _invoke("contract", "infer", str(data), "-o", str(draft), "--id", "linie", "--owner", "acme")
    document = yaml.safe_load(draft.read_text())
    monkeypatch.setattr(contracts_cli, "client", lambda hub, token: _Hub(document))
    code, output = _invoke(
        "contract", "declare", "linie", "0.1.0", str(data), "--name", "Linie 3 (Drücke)"
    )
    assert code == 2
    lines = output.strip().splitlines()
    assert lines[1] == "read as semicolon-separated, decimal comma, cp1252 (Western European)"
    assert lines[-1] == (
        "error: not declared: --name must start with a letter or digit and hold only letters, "
        "digits, spaces and . _ - (at most 100 characters)"
    )
    assert "pydantic" not in output and "Drücke" not in output
