"""A large model through the hub, in bounded memory: upload (PUT /runs/{id}/model) and
download (GET /models/{id}/weights), against the same bytes put to and read from the
object store directly (the hub's floor: it cannot be faster than its storage).

Measured per run: the hub process's peak RSS above its idle RSS while the transfer runs
(sampled from /proc every 20 ms), and the time, each beside the direct S3 transfer. The
model is random bytes streamed from a generator (the client holds 1 MiB at a time).

    python benchmarks/hub_upload.py --mib 1024 --runs 3
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from minio import Minio
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import (
    HubProcess,
    build_park,
    contract_in_state,
    finish_body,
    hub_env,
    running_experiment,
)
from samples import contract_data

from fedpark.experiments.protocol import FactoryResult, RoundReport
from fedpark.hub.storage import Catalog
from fedpark.hub.storage.embedded import EmbeddedS3

CHUNK = 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """The highest RSS of ``pid`` while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def payload(size: int, seed: bytes) -> Iterator[bytes]:
    """``size`` pseudo-random bytes, 1 MiB at a time (nothing held whole)."""
    block = hashlib.sha256(seed).digest() * (CHUNK // 32)
    sent = 0
    while sent < size:
        part = block[: min(CHUNK, size - sent)]
        sent += len(part)
        yield part


class Stream:
    """A file-like view of ``payload`` for minio (which reads, not iterates)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buffer = chunks, b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        out, self._buffer = (self._buffer, b"") if n < 0 else (self._buffer[:n], self._buffer[n:])
        return out


def upload_target(hub: HubProcess) -> tuple[str, str, str, dict[str, Any]]:
    """A running experiment on an approved contract (written to the catalog: the benchmark
    is about the transfer, not about Flower). Returns its id, the run's token, and the token
    of a partner that may download its model, and the contract."""
    park = build_park(hub)
    policy = contract_data()["policy"] | {"model_download_orgs": ["acme"], "min_factories": 1}
    contract = contract_in_state(park, "approved", policy=policy)
    catalog = Catalog(hub.database_url)
    try:
        experiment_id, token = running_experiment(catalog, contract, "acme", ["acme"])
    finally:
        catalog.dispose()
    return experiment_id, token, park.members["acme-partner"].token, contract


def seal(hub: HubProcess, experiment_id: str, token: str, contract: dict[str, Any]) -> None:
    report = RoundReport(
        round=1,
        contributors=["acme"],
        min_factories=1,
        train_factories=[FactoryResult(org="acme", node_id=1, examples=1)],
    )
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=600) as run:
        base = f"{hub.url}/api/v1/runs/{experiment_id}"
        assert run.post(f"{base}/rounds", json=report.model_dump(mode="json")).status_code == 204
        assert run.post(f"{base}/finish", json=finish_body(contract)).status_code == 204


def run_once(s3: EmbeddedS3, size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        hub = HubProcess(Path(tmp) / "hub", hub_env(s3)).start()
        try:
            experiment_id, token, partner, contract = upload_target(hub)
            pid = hub.process.process.pid if hub.process and hub.process.process else 0
            idle = rss_mib(pid)
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/octet-stream",
            }
            with PeakRss(pid) as up, httpx.Client(timeout=600) as http:
                started = time.perf_counter()
                answer = http.put(
                    f"{hub.url}/api/v1/runs/{experiment_id}/model",
                    content=payload(size, b"model"),
                    headers=headers,
                )
                upload_s = time.perf_counter() - started
            assert answer.status_code == 204, answer.text
            seal(hub, experiment_id, token, contract)
            reader = {"Authorization": f"Bearer {partner}"}
            with PeakRss(pid) as down, httpx.Client(timeout=600, headers=reader) as http:
                started = time.perf_counter()
                got = 0
                with http.stream("GET", f"{hub.url}/api/v1/models/{experiment_id}/weights") as r:
                    assert r.status_code == 200, r.read()
                    for chunk in r.iter_bytes(CHUNK):
                        got += len(chunk)
                download_s = time.perf_counter() - started
            assert got == size, got
        finally:
            hub.stop()
    client = Minio(s3.endpoint, s3.credentials.access_key, s3.credentials.secret_key, secure=False)
    bucket = f"direct-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    started = time.perf_counter()
    client.put_object(bucket, "m", Stream(payload(size, b"model")), size, part_size=16 * CHUNK)
    direct_up = time.perf_counter() - started
    started = time.perf_counter()
    response = client.get_object(bucket, "m")
    for _ in response.stream(CHUNK):
        pass
    response.close()
    response.release_conn()
    direct_down = time.perf_counter() - started
    return {
        "idle": idle,
        "upload_rss": up.peak - idle,
        "download_rss": down.peak - idle,
        "upload_s": upload_s,
        "download_s": download_s,
        "direct_up_s": direct_up,
        "direct_down_s": direct_down,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="Model size in MiB [1024].")
    parser.add_argument("--runs", type=int, default=3, help="Repetitions; medians shown [3].")
    args = parser.parse_args()
    size = args.mib * CHUNK
    console = Console()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedS3(Path(tmp) / "s3") as s3:
        runs = []
        for i in range(args.runs):
            console.print(f"run {i + 1}/{args.runs}: {args.mib} MiB …")
            runs.append(run_once(s3, size))

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    table = Table(title=f"A {args.mib} MiB model through the hub (medians of {args.runs} runs)")
    for column in ("transfer", "hub peak RSS above idle", "of the body", "time", "vs direct S3"):
        table.add_column(column, justify="right")
    for name, rss, took, direct in (
        ("upload (PUT /runs/…/model)", "upload_rss", "upload_s", "direct_up_s"),
        ("download (GET /models/…/weights)", "download_rss", "download_s", "direct_down_s"),
    ):
        table.add_row(
            name,
            f"{med(rss):.0f} MiB",
            f"{med(rss) / args.mib:.1%}",
            f"{med(took):.1f} s",
            f"{med(took) / med(direct):.2f}x",
        )
    console.print(table)
    console.print(
        f"hub idle RSS {med('idle'):.0f} MiB; direct S3: up {med('direct_up_s'):.1f} s, "
        f"down {med('direct_down_s'):.1f} s; {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
