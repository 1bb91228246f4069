"""`fedpark contract import-odcs`: a contract per schema object (or one by --schema), every
change said in a note, every refusal one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from clirunner import CliRunner

from fedpark.clients.cli.main import app

FIXTURES = Path(__file__).parents[1] / "contracts" / "fixtures" / "odcs"
runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["contract", "import-odcs", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_several_schema_objects_into_a_folder(tmp_path: Path) -> None:
    doc = FIXTURES / "several-schema-objects.yaml"
    code, output = _run(str(doc), "-o", str(tmp_path / "out"), "--owner", "acme")
    assert code == 0, output
    orders, items = (
        tmp_path / "out" / "webshop-orders.yaml",
        tmp_path / "out" / "webshop-line-items.yaml",
    )
    assert output.splitlines() == [
        f"wrote {orders} (schema object orders)",
        "  note: one contract per schema object: id 'webshop' and 'orders' make the contract's "
        "id 'webshop-orders' (the original is kept in its description)",
        "  note: skipped schema object(s) without properties: audit",
        f"wrote {items} (schema object line_items)",
        "  note: one contract per schema object: id 'webshop' and 'line_items' make the "
        "contract's id 'webshop-line-items' (the original is kept in its description)",
    ]
    assert yaml.safe_load(items.read_text())["columns"][2]["type"] == "int32"


def test_schema_option_picks_one_into_a_file(tmp_path: Path) -> None:
    doc, out = FIXTURES / "several-schema-objects.yaml", tmp_path / "items.yaml"
    code, output = _run(str(doc), "-o", str(out), "--owner", "acme", "--schema", "line_items")
    assert code == 0, output
    assert yaml.safe_load(out.read_text())["id"] == "webshop-line-items"


def test_several_into_one_file_is_refused_naming_them(tmp_path: Path) -> None:
    doc = FIXTURES / "several-schema-objects.yaml"
    code, output = _run(str(doc), "-o", str(tmp_path / "one.yaml"), "--owner", "acme")
    assert code == 2
    assert output.strip() == (
        f"error: {doc} has 2 schema objects (orders, line_items): give a folder with -o, or "
        "choose one with --schema NAME"
    )
    assert not (tmp_path / "one.yaml").exists()


def test_slugged_id_is_said(tmp_path: Path) -> None:
    code, output = _run(str(FIXTURES / "urn-id.yaml"), "-o", str(tmp_path), "--owner", "acme")
    assert code == 0, output
    assert (
        "  note: id 'urn:datacontract:checkout:Orders_Latest' is not a FedPark id: the "
        "contract's id 'urn-datacontract-checkout-orders-latest' (the original is kept in its "
        "description)"
    ) in output.splitlines()
    saved = yaml.safe_load((tmp_path / "urn-datacontract-checkout-orders-latest.yaml").read_text())
    assert saved["description"].endswith("ODCS id: urn:datacontract:checkout:Orders_Latest")


def test_refusal_is_one_line_naming_the_file_and_object(tmp_path: Path) -> None:
    doc = FIXTURES / "object-without-properties.yaml"
    code, output = _run(str(doc), "-o", str(tmp_path), "--owner", "acme")
    assert code == 2
    assert output.strip() == (
        f'error: {doc}: schema object "states", property "state": logicalType object without '
        "properties: FedPark cannot tell its fields (list them under properties, or give a "
        "physicalType)"
    )


@pytest.mark.parametrize("doc", sorted(FIXTURES.glob("*.yaml")), ids=lambda p: p.name)
def test_no_fixture_gives_a_traceback(tmp_path: Path, doc: Path) -> None:
    code, output = _run(str(doc), "-o", str(tmp_path), "--owner", "acme")
    assert code in (0, 2), output
    if code == 2:
        assert len(output.strip().splitlines()) == 1 and output.startswith("error: ")
