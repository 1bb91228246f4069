"""`fedpark contract`: draft → approved → signed → verified offline, through a real hub."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml
from harness import Park, clean_env, fedpark_argv
from samples import sensor_table

pytestmark = pytest.mark.integration


def run(*args: str, park: Park | None = None, who: str = "") -> subprocess.CompletedProcess[str]:
    env = clean_env(COLUMNS="200")
    if park is not None:
        env["FEDPARK_HUB"] = park.hub.url
        env["FEDPARK_TOKEN"] = park.members[who].token
    return subprocess.run(
        fedpark_argv(*args), env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def data_files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "line.parquet"
    pq.write_table(sensor_table(), good)
    table = sensor_table()
    temp = table["temp"].to_numpy().copy()
    temp[7] = 999.5
    broken = tmp_path / "broken.parquet"
    pq.write_table(table.set_column(2, "temp", [temp]), broken)
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(good.read_bytes()[:2000])
    return {"good": good, "broken": broken, "truncated": truncated}


def test_offline_infer_and_validate(tmp_path: Path, data_files: dict[str, Path]) -> None:
    draft = tmp_path / "draft.yaml"
    inferred = run(
        "contract",
        "infer",
        str(data_files["good"]),
        "-o",
        str(draft),
        "--id",
        "line-sensors",
        "--owner",
        "acme",
    )
    assert inferred.returncode == 0, inferred.stderr
    assert yaml.safe_load(draft.read_text())["columns"][0]["name"] == "ts"

    good = run("contract", "validate", str(draft), str(data_files["good"]))
    assert good.returncode == 0 and "PASSED" in good.stdout
    broken = run("contract", "validate", str(draft), str(data_files["broken"]))
    assert broken.returncode == 1 and "FAILED" in broken.stdout
    assert "temp" in broken.stdout and "max" in broken.stdout
    assert "999" not in broken.stdout  # the offending value is never shown, only its row
    profiled = run("contract", "validate", str(draft), str(data_files["broken"]), "--profile")
    assert "Profile" in profiled.stdout and "999.5" in profiled.stdout  # aggregates only
    unreadable = run("contract", "validate", str(draft), str(data_files["truncated"]))
    assert unreadable.returncode == 2 and "truncated.parquet" in unreadable.stdout
    assert "Traceback" not in unreadable.stdout + unreadable.stderr

    odcs = tmp_path / "odcs.yaml"
    back = tmp_path / "back.yaml"
    assert run("contract", "export-odcs", str(draft), "-o", str(odcs)).returncode == 0
    assert run("contract", "import-odcs", str(odcs), "-o", str(back)).returncode == 0
    assert yaml.safe_load(back.read_text()) == yaml.safe_load(draft.read_text())


def test_malformed_contract_file_is_a_clear_error(
    tmp_path: Path, data_files: dict[str, Path]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "id: x1\nversion: 1.0.0\ntitle: t\nowner: acme\ncolumns:\n  - {name: a, type: int33}\n"
    )
    result = run("contract", "validate", str(bad), str(data_files["good"]))
    assert result.returncode == 2
    assert result.stdout.strip() == f"error: {bad}: column \"a\" (1st): type: unknown type 'int33'"


def test_draft_approve_sign_verify_declare(
    park: Park, tmp_path: Path, data_files: dict[str, Path]
) -> None:
    draft = tmp_path / "draft.yaml"
    run(
        "contract",
        "infer",
        str(data_files["good"]),
        "-o",
        str(draft),
        "--id",
        "cli-line",
        "--owner",
        "acme",
    )
    created = run("contract", "create", str(draft), "--json", park=park, who="acme-factory")
    assert created.returncode == 0, created.stderr + created.stdout
    version = json.loads(created.stdout)["version"]
    assert (
        run("contract", "submit", "cli-line", version, park=park, who="acme-factory").returncode
        == 0
    )
    approved = run("contract", "approve", "cli-line", version, park=park, who="acme-steward")
    assert approved.returncode == 0 and "approved" in approved.stdout

    folder = tmp_path / "dl"
    got = run(
        "contract",
        "download",
        "cli-line",
        version,
        "-o",
        str(folder),
        park=park,
        who="acme-researcher",
    )
    assert got.returncode == 0, got.stderr
    verify = (
        "contract",
        "verify",
        str(folder / "contract.json"),
        str(folder / "signature.json"),
        "--key",
        str(folder / "hub-key.pem"),
    )
    ok = run(*verify)  # offline: no hub settings
    assert ok.returncode == 0 and "verified" in ok.stdout and "acme-steward" in ok.stdout

    document = json.loads((folder / "contract.json").read_text())
    document["columns"][2]["rules"]["max"] = 10_000  # quietly relax a rule
    (folder / "contract.json").write_text(json.dumps(document))
    tampered = run(*verify)
    assert tampered.returncode == 1 and "NOT VERIFIED" in tampered.stdout

    declared = run(
        "contract",
        "declare",
        "cli-line",
        version,
        str(data_files["good"]),
        "--name",
        "line-1",
        park=park,
        who="acme-factory",
    )
    assert declared.returncode == 0, declared.stdout + declared.stderr
    listing = run(
        "contract", "datasets", "cli-line", version, "--json", park=park, who="acme-steward"
    )
    rows = json.loads(listing.stdout)
    assert [(r["org_id"], r["name"], r["compliant"]) for r in rows] == [("acme", "line-1", True)]

    # Data that breaks the contract is not declared by mistake: exit 1, nothing recorded ...
    def declare(data: Path, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
        args = ("contract", "declare", "cli-line", version, str(data), "--name", name, *extra)
        return run(*args, park=park, who="acme-factory")

    refused = declare(data_files["broken"], "line-2")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "not declared: broken.parquet breaks cli-line" in refused.stdout
    assert "--allow-failing" in refused.stdout
    unreadable = declare(data_files["truncated"], "line-3")
    assert unreadable.returncode == 2 and "not declared: truncated.parquet" in unreadable.stdout
    # ... unless on purpose; and what is recorded names neither the file nor its own columns.
    headless = tmp_path / "secret-supplier-line.csv"  # a CSV export without its header row
    pacsv.write_csv(sensor_table().drop_columns(["window"]), headless)
    headless.write_text("\n".join(headless.read_text().splitlines()[1:]) + "\n")
    recorded = declare(headless, "line-4", "--allow-failing")
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert "declared as non-compliant" in recorded.stdout
    listing = run(
        "contract", "datasets", "cli-line", version, "--json", park=park, who="acme-steward"
    )
    [stored] = [r for r in json.loads(listing.stdout) if r["name"] == "line-4"]
    assert stored["compliant"] is False
    assert stored["report"]["source"] == "a .csv file"
    extras = [d["column"] for d in stored["report"]["schema_differences"] if d["kind"] == "extra"]
    assert extras and all(c.startswith("extra column #") for c in extras), extras
    assert "secret-supplier" not in listing.stdout and "1970-01-01" not in listing.stdout
