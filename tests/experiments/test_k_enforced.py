"""The error path of a real experiment: a factory whose CSV breaks mid-file is refused by line
number, no model is made from fewer than k factories, a model names who contributed, and no
byte of any row reaches the hub, the SuperLink or anything they store, answer or log.

Three factories join with CSV files (k = 2). Every row carries a sentinel in its pii
column; bravo's file ends with a row that has one field too many, itself full of sentinels
(Arrow's error message quotes that row whole). Everything the factories send passes through
recording proxies; afterwards the hub's answers, its data folder (catalog, log), the
SuperLink's folder (state, the ServerApp's log) and the S3 server's folder are searched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from federation import ParkSetup, launch_body, start_park, wait_for_experiment
from samples import contract_data

from fedpark.hub.storage.embedded import EmbeddedS3

# Two experiments, each waited for up to 300 s: past pytest's 300 s default. A slow
# machine must reach these waits and fail with their message.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROWS = 300
SENTINEL = "SENTINEL-ERRPATH-v9Kq"
BROKEN_READING = "61.98765432123457"  # a reading only in the broken row


def _flat(org: str, table: pa.Table) -> pa.Table:
    """CSV holds no nested column; every row's pii cell is a sentinel."""
    table = table.drop_columns(["window"])
    names = pa.array([f"{SENTINEL}-{org}-{i:04d}" for i in range(table.num_rows)])
    return table.set_column(table.schema.get_field_index("operator"), "operator", names)


def _csv(org: str, table: pa.Table, folder: Path) -> Path:
    path = folder / "line.csv"
    pacsv.write_csv(table, path)
    if org == "bravo":  # one field too many on the last line, as a hand-edited export has
        with path.open("a") as fh:
            fh.write(
                f'2026-01-01 00:57:36.000Z,"press-1",{BROKEN_READING},3.5,1,999999,'
                f'"{SENTINEL}-broken",{SENTINEL}-extra-field\n'
            )
    return path


def _files(*folders: Path) -> bytes:
    return b"".join(p.read_bytes() for folder in folders for p in folder.rglob("*") if p.is_file())


def _run(park: ParkSetup, name: str, participants: list[str]) -> dict[str, Any]:
    body = launch_body(park, name, rounds=2) | {"participants": participants}
    with park.hub.client(park.people["alice"].token) as alice:
        created = alice.post("/experiments", json=body)
        assert created.status_code == 201, created.text
        return wait_for_experiment(alice, created.json()["id"], timeout=300)


def test_a_broken_csv_is_refused_by_line_and_fewer_than_k_make_no_model(
    s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    """Two experiments on one park (k = 2): acme + bravo (bravo refuses: no model), then
    acme + bravo + carol (a model from acme and carol, which says so)."""
    columns = contract_data()["columns"][:-1]  # without the nested `window`
    park = start_park(
        tmp_path,
        s3_server,
        factories=("acme", "bravo", "carol"),
        rows=ROWS,
        prepare=_flat,
        write=_csv,
        record=True,
        columns=columns,
    )
    answers: list[bytes] = []
    try:
        state = _run(park, "k on the error path", ["acme", "bravo"])
        experiment = state["id"]
        done = _run(park, "k with a third factory", ["acme", "bravo", "carol"])
        with park.hub.client(park.people["alice"].token) as alice:
            rounds = alice.get(f"/experiments/{experiment}/rounds")
            answers += [alice.get(f"/experiments/{experiment}").content, rounds.content]
            answers.append(alice.get("/experiments").content)
            answers.append(alice.get(f"/experiments/{done['id']}/rounds").content)
        with park.hub.client(park.people["buyer"].token) as buyer:
            model = buyer.get(f"/models/{experiment}")
            listed = buyer.get("/models")
            manifest = buyer.get(f"/models/{done['id']}/manifest")
            answers += [model.content, listed.content, manifest.content]
    finally:
        park.stop()

    # k: the round aggregated nothing, the experiment failed saying why, no model exists.
    assert state["status"] == "failed", state
    assert state["error"].startswith(
        "round 1 aggregated nothing: 1 factory contributed, the contract requires at least 2"
    ), state["error"]
    assert (
        "bravo refused: the data file has 8 fields on line 302 where the header has 7"
        in (state["error"])
    )
    [report] = [r["report"] for r in rounds.json()]
    assert (report["aggregated"], report["contributors"]) == (False, ["acme"])
    assert [r["org"] for r in report["refused"]] == ["bravo"]
    assert model.status_code == 404
    assert experiment not in [m["experiment_id"] for m in listed.json()]

    # With a third factory the rounds reach k; the model names who is in it, not who was asked.
    assert done["status"] == "finished", done
    facts = manifest.json()
    assert (facts["participants"], facts["invited"]) == (
        ["acme", "carol"],
        ["acme", "bravo", "carol"],
    )
    assert [(r["aggregated"], r["contributors"], r["refused"]) for r in facts["rounds"]] == [
        (True, ["acme", "carol"], ["bravo"])
    ] * 2
    [summary] = [m for m in listed.json() if m["experiment_id"] == done["id"]]
    assert summary["contributors"] == ["acme", "carol"]

    # The factory heard it first: `factory join` checked the file at start, and printed (and
    # logged) each refusal its ClientApp made, with counts and line numbers only.
    joined = (tmp_path / "bravo" / "join.log").read_text()
    assert "runs will be refused" in joined and "8 fields on line 302" in joined, joined
    assert ": refused: the data file has 8 fields on line 302" in joined, joined
    assert "meets it" in (tmp_path / "acme" / "join.log").read_text()
    assert SENTINEL not in joined

    # Nothing of any row anywhere: what the factories sent, what the hub answered, and what
    # the hub, the SuperLink and the object store keep (catalog, logs, objects).
    assert park.fleet_proxy is not None and park.hub_proxy is not None
    sent = bytes(park.fleet_proxy.sent) + bytes(park.hub_proxy.sent)
    kept = _files(park.hub.data_dir, park.federation.home, s3_server.data_dir)
    needles = [SENTINEL.encode(), BROKEN_READING.encode()]
    # Controls: the rows hold the needles, and the captures and folders are the real ones.
    rows = _files(tmp_path / "acme", tmp_path / "bravo")
    assert all(n in rows for n in needles)
    assert len(park.fleet_proxy.sent) > 10_000 and b"bravo" in sent
    assert b"line 302" in b"".join(answers) and b"k on the error path" in kept
    for where, haystack in {"sent": sent, "answers": b"".join(answers), "kept": kept}.items():
        assert [n for n in needles if n in haystack] == [], where
