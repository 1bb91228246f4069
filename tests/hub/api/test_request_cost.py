"""A request costs about what its bytes say: bodies whose shape would cost gigabytes once
parsed are refused before parsing, and text the catalog cannot store is refused on every
backend, each with a 422 that says why."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from harness import HubProcess, Park, add_member, add_org, hub_env, new_contract

from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration


# 7.4 MiB of 2.6 million empty objects: once parsed and validated, gigabytes.
def _abusive() -> bytes:  # built by the test, not at every collection
    return b"[" + b",".join([b"{}"] * 2_600_000) + b"]"


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_sixteen_abusive_bodies_at_once_cost_the_hub_little(
    s3_server: EmbeddedS3, tmp_path: Path, database: dict[str, str]
) -> None:
    hub = HubProcess(tmp_path / "hub", hub_env(s3_server, **database)).start()
    try:
        with hub.client(hub.admin_token) as admin:
            add_org(admin, "acme")
            author = add_member(admin, "acme-author", "acme", "factory")
        assert hub.process is not None and hub.process.process is not None
        pid = hub.process.process.pid
        body = _abusive()
        before = _rss_mib(pid)
        peak = [before]
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.02):
                peak.append(_rss_mib(pid))

        def abuse(_: int) -> httpx.Response:
            with hub.client(author.token) as client:
                return client.post(
                    "/contracts",
                    content=body,
                    headers={"Content-Type": "application/json"},
                    timeout=120,
                )

        watcher = threading.Thread(target=watch)
        watcher.start()
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(abuse, range(16)))
            with hub.client(author.token) as other:
                me = other.get("/me")  # another user is still served
        done.set()
        watcher.join()
    finally:
        hub.stop()
    assert {a.status_code for a in answers} == {422}
    assert "more than 100000 JSON objects and arrays" in answers[0].json()["detail"]
    assert me.status_code == 200
    grown = max(peak) - before
    print(f"hub RSS {before:.0f} MiB before, +{grown:.0f} MiB at most for 16 abusive bodies")
    assert grown < 400, grown  # 16 bodies of 7.4 MiB are buffered at once; no parse


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("title", "line\u0000sensors"),
        ("title", "\ud800 lone surrogate"),
        ("column name", "te\u0000mp"),
    ],
)
def test_text_the_catalog_cannot_store_is_a_422(park: Park, where: str, value: str) -> None:
    data = new_contract("acme")
    if where == "title":
        data["title"] = value
    else:
        data["columns"][2]["name"] = value
    body = json.dumps(data).encode()  # ensure_ascii: escapes as \\u0000 and \\ud800
    with park.client("acme-factory") as author:
        answer = author.post(
            "/contracts", content=body, headers={"Content-Type": "application/json"}
        )
        search = author.get("/contracts", params={"q": "a\u0000b"})
        missing = author.get(f"/contracts/{data['id']}/versions/{data['version']}")
    assert answer.status_code == 422, answer.text
    assert "may not contain" in answer.json()["detail"]
    assert search.status_code == 422 and "NUL" in search.json()["detail"]
    assert missing.status_code == 404  # nothing was half-written


def test_a_chunked_body_without_length_is_cut_off_at_the_limit(park: Park) -> None:
    """No Content-Length to refuse up front: the hub counts as it reads and answers 413."""

    def chunks() -> Iterator[bytes]:
        yield b'{"title": "'
        for _ in range(10):  # 10 MiB, over the 8 MiB limit
            yield b"x" * (1 << 20)
        yield b'"}'

    with park.client("acme-factory") as author:
        answer = author.post(
            "/contracts", content=chunks(), headers={"Content-Type": "application/json"}
        )
        still = author.get("/me")
    assert answer.status_code == 413, answer.text
    assert answer.json()["type"] == "urn:fedpark:problem:too-large"
    assert still.status_code == 200


def test_a_run_report_is_a_document_with_the_general_limit(park: Park) -> None:
    """Under /runs/ weights may be large; a JSON report there is parsed, so it gets the
    general 8 MiB limit (a 67 MiB body of empty strings took the hub 11 s to scan)."""
    body = json.dumps({"summary": {"x": [""] * (3 << 20)}}).encode()  # 12 MiB
    with park.client("acme-factory") as caller:
        answer = caller.post(
            "/runs/exp-000000000000/finish",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        upload = caller.put(
            "/runs/exp-000000000000/model",
            content=b"\0" * (9 << 20),  # weights over 8 MiB: not refused for their size
            headers={"Content-Type": "application/octet-stream"},
        )
    assert answer.status_code == 413, answer.text
    assert upload.status_code == 401  # the run token is what is wrong, not the size
