"""Cold start of `fedpark hub serve` with no configuration, against its floor.

The floor is the embedded S3 server alone (`weed mini` until it answers S3), which the hub must
wait for anyway. Prints medians of several runs; each run uses a fresh data dir.

    python benchmarks/cold_start.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from fedpark.clients.processes import ChildProcess
from fedpark.experiments.protocol.processes import free_ports
from fedpark.hub.storage.embedded import EmbeddedS3


def time_storage_alone() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with EmbeddedS3(Path(tmp)):
            return time.perf_counter() - started


def time_hub(timeout: float = 120) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        (port,) = free_ports(1)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEDPARK_")}
        argv = [
            sys.executable,
            "-m",
            "fedpark.clients.cli",
            "hub",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            tmp,
        ]
        started = time.perf_counter()
        hub = ChildProcess(argv, Path(tmp) / "hub.log", env=env).start()
        try:
            while time.perf_counter() - started < timeout:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health").json()["status"] == "up":
                        return time.perf_counter() - started
                except (httpx.TransportError, ValueError):
                    time.sleep(0.05)
            raise RuntimeError(hub.log_tail())
        finally:
            hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    storage = [time_storage_alone() for _ in range(args.runs)]
    hub = [time_hub() for _ in range(args.runs)]
    floor = statistics.median(storage)
    print(f"{'what':<44}{'median s':>10}{'min s':>8}{'max s':>8}{'x floor':>9}")
    for name, values in (
        ("embedded S3 alone (floor)", storage),
        ("fedpark hub serve until /health is up", hub),
    ):
        median = statistics.median(values)
        print(
            f"{name:<44}{median:>10.2f}{min(values):>8.2f}{max(values):>8.2f}{median / floor:>9.2f}"
        )
    print(f"runs: {args.runs}; python {sys.version.split()[0]}; {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
