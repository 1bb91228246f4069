"""The command line prints a person's and the hub's text as is (never as rich markup), and
says what to fix in a contract or a CSV file in FedPark's words."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from clirunner import CliRunner

from fedpark.clients.cli.common import body, fail, show
from fedpark.clients.cli.main import app
from fedpark.experiments.protocol.resources.identity import OrganizationCreate

SLUG_WORDS = (
    "must be lowercase letters (a-z), digits and dashes, starting and ending with a letter "
    "or digit, e.g. press-sensors"
)
CONTRACT = """\
id: {id}
version: {version}
title: Press line
owner: acme
columns:
  - {{name: "[bold]force[/bold]", type: float32}}
  - {{name: "[a-z0-9]", tpye: int64}}
"""


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    return result.output


def test_contract_problems_print_literally_and_all_of_them(tmp_path: Path) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text(CONTRACT.format(id="Press_Line", version="0.1"))
    (tmp_path / "d.csv").write_text("a\n1\n")
    said = _run("contract", "validate", str(contract), str(tmp_path / "d.csv"))
    assert said.splitlines() == [
        f"error: {contract} has 3 problems:",
        '  - column "[a-z0-9]" (2nd): unknown key "tpye" (did you mean "type"?)',
        f"  - id: {SLUG_WORDS}",
        "  - version: versions are semantic versions (MAJOR.MINOR.PATCH): write 0.1.0, not 0.1 "
        '(quote it in YAML if needed: version: "0.1.0")',
    ]


def test_a_csv_cell_of_another_type_is_named_in_the_verdict(tmp_path: Path) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text(CONTRACT.format(id="press-line", version="1.0.0").replace("tpye", "type"))
    data = tmp_path / "plant [2].csv"
    data.write_text('"[bold]force[/bold]","[a-z0-9]"\n1.5,1\n2.5,x\n')
    said = _run("contract", "validate", str(contract), str(data))
    assert said.splitlines()[0] == (
        'FAILED plant [2].csv (csv) against press-line 1.0.0: column "[a-z0-9]": row 1 (line 3 '
        "of the file) holds a value that is not int64; reading stopped there, so no rule was "
        "checked: fix that cell, or change the column's type in the contract"
    )
    assert "│ [a-z0-9] │ wrong type │ int64" in said


def test_tables_and_errors_print_text_as_is(capsys: pytest.CaptureFixture[str]) -> None:
    show([{"id": "[a-z0-9]", "title": "[red]not red[/red]"}], ("id", "title"), as_json=False)
    fail("pattern '^[a-z0-9][a-z0-9-]*[a-z0-9]$' and [bold]this[/bold]")
    printed = capsys.readouterr().out
    assert "[a-z0-9]" in printed and "[red]not red[/red]" in printed
    assert "error: pattern '^[a-z0-9][a-z0-9-]*[a-z0-9]$' and [bold]this[/bold]" in printed


def test_an_option_that_breaks_the_hubs_rules_is_said_in_fedpark_words() -> None:
    with pytest.raises(typer.BadParameter) as refused:
        body(OrganizationCreate, id="Bad_ID", name="Acme", kind="factory")
    assert refused.value.message == f"id: {SLUG_WORDS}"


def test_an_unreadable_signature_is_said_without_the_parsers_text(tmp_path: Path) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text(CONTRACT.format(id="press-line", version="1.0.0").replace("tpye", "type"))
    signature, key = tmp_path / "signature.json", tmp_path / "hub-key.pem"
    signature.write_text("<html>not a signature</html>")
    said = _run("contract", "verify", str(contract), str(signature), "--key", str(key))
    assert said.strip() == f"error: {signature} is not JSON: use the signature file the hub gave"
    signature.unlink()
    said = _run("contract", "verify", str(contract), str(signature), "--key", str(key))
    assert said.strip() == f"error: cannot read {signature}: missing, or no permission to read it"


def test_a_hub_error_prints_as_is(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fedpark.clients.cli.main import main

    monkeypatch.setenv("FEDPARK_HUB", "http://x/[bold]park[/bold]/console")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setattr("sys.argv", ["fedpark", "whoami"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    assert capsys.readouterr().err.strip() == (
        "error: FEDPARK_HUB=http://x/[bold]park[/bold]/console does not look like a FedPark "
        "hub's URL: use the hub's base URL, e.g. http://x"
    )


def test_a_file_that_is_not_parquet_is_said_without_arrows_text(tmp_path: Path) -> None:
    data = tmp_path / "plant.parquet"
    data.write_text("temp,pressure\n[secret],1\n")
    said = _run("data", "partition", str(data), "-o", str(tmp_path / "parts"), "--scheme", "iid")
    assert said.strip() == (
        f"error: cannot read {data} as Parquet: missing, unreadable, not Parquet, or damaged"
    )


def test_schema_differences_print_bracketed_types_literally(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    contract = tmp_path / "c.yaml"
    contract.write_text(
        "id: press-line\nversion: 1.0.0\ntitle: Press line\nowner: acme\ncolumns:\n"
        "  - {name: ts, type: 'timestamp[us]'}\n"
        "  - {name: tags, type: 'map<string, int64>'}\n"
    )
    data = tmp_path / "d.parquet"
    stamps = pa.array([0], pa.timestamp("us", tz="UTC"))
    tags = pa.array([[("a", 1)]], pa.map_(pa.string(), pa.int32()))
    pq.write_table(pa.table({"ts": stamps, "tags": tags, "[extra]": [1]}), data)
    said = _run("contract", "validate", str(contract), str(data))
    assert "timestamp[us]" in said and "timestamp[us, tz=UTC]" in said
    assert "map<string, int32>" in said and "[extra]" in said
    assert "wrong type" in said and "[red]" not in said


def test_paths_a_person_chose_are_printed_as_they_are(tmp_path: Path) -> None:
    """A folder named with brackets (`[bold]`, `[2026]`) is where the file went: the message
    says that path, not one with the brackets eaten as markup."""
    contract = tmp_path / "c.yaml"
    contract.write_text(CONTRACT.format(id="press-line", version="1.0.0").replace("tpye", "type"))
    contract.write_text(contract.read_text().replace('"[a-z0-9]"', "code"))
    folder = tmp_path / "o[bold]" / "[2026]"
    folder.mkdir(parents=True)
    output = folder / "x.yaml"
    said = _run("contract", "export-odcs", str(contract), "-o", str(output))
    assert output.exists(), said
    assert said.strip() == f"wrote {output}"


@pytest.mark.parametrize("command", ["validate", "export-odcs"])
def test_a_contract_nested_500_deep_is_exit_2_in_one_line(tmp_path: Path, command: str) -> None:
    """The document parser's RecursionError was a traceback and exit 1 ("data breaks the
    contract"); it is a file that is not a contract: exit 2, one line."""
    contract = tmp_path / "deep.yaml"
    contract.write_text("id: " + "[" * 500 + "]" * 500 + "\n")
    (tmp_path / "d.csv").write_text("a\n1\n")
    rest = [str(tmp_path / "d.csv")] if command == "validate" else ["-o", str(tmp_path / "o.yaml")]
    result = CliRunner().invoke(app, ["contract", command, str(contract), *rest])
    assert result.exit_code == 2, result.output
    said = result.output.strip()
    assert said == f"error: {contract} nests more than 64 levels deep: not a contract"
    assert not (tmp_path / "o.yaml").exists()
