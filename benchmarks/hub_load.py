"""The hub under 16 concurrent clients, on SQLite and on PostgreSQL, against its floor.

Each client loops over a mixed workload for ``--seconds``: who am I (GET /me), a contract
search (GET /contracts), a new contract draft (POST /contracts: object store + catalog + audit
record in one transaction) and a token (POST /tokens). The floor is GET /health on the same hub
(no authentication, no catalog): what the HTTP stack alone costs under the same load. Prints
latency percentiles per request kind and backend, errors (5xx or no answer) and throughput;
runs are repeated and medians shown.

PostgreSQL: ``--postgres URL`` (an empty database), or, where Debian's server is installed, a
throwaway cluster (the tests' helper, ``tests/postgres.py``).

    python benchmarks/hub_load.py --clients 16 --seconds 20 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import HubProcess, add_member, add_org, hub_env, new_contract
from postgres import PostgresCluster

from fedpark.hub.storage.embedded import EmbeddedS3

KINDS = ("GET /health (floor)", "GET /me", "GET /contracts", "POST /contracts", "POST /tokens")


def _client_loop(
    hub: HubProcess, token: str, user_id: str, stop: threading.Event, out: dict[str, list[float]]
) -> int:
    errors = 0
    with httpx.Client(base_url=hub.url, timeout=60) as http:
        headers = {"Authorization": f"Bearer {token}"}
        while not stop.is_set():
            for kind in KINDS:
                method, path = kind.split()[:2]
                body: dict[str, Any] | None = None
                if path == "/contracts" and method == "POST":
                    body = new_contract("acme")
                elif path == "/tokens":
                    body = {"name": "load", "user_id": user_id}
                url = path if path == "/health" else f"/api/v1{path}"
                started = time.perf_counter()
                try:
                    answer = http.request(method, url, json=body, headers=headers)
                    failed = answer.status_code >= 500
                except httpx.TransportError:
                    failed = True
                out[kind].append(time.perf_counter() - started)
                errors += failed
    return errors


def run_once(s3: EmbeddedS3, env: dict[str, str], clients: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        hub = HubProcess(Path(tmp) / "hub", hub_env(s3, **env)).start()
        try:
            with hub.client(hub.admin_token) as admin:
                add_org(admin, "acme")
                member = add_member(admin, f"load-{uuid.uuid4().hex[:6]}", "acme", "factory")
            latencies: dict[str, list[float]] = defaultdict(list)
            per_thread = [defaultdict(list) for _ in range(clients)]
            errors = [0] * clients
            stop = threading.Event()

            def work(i: int) -> None:
                errors[i] = _client_loop(hub, member.token, member.user_id, stop, per_thread[i])

            threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            time.sleep(seconds)
            stop.set()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
        finally:
            hub.stop()
    for bucket in per_thread:
        for kind, values in bucket.items():
            latencies[kind] += values
    total = sum(len(v) for v in latencies.values())
    return {"latencies": latencies, "errors": sum(errors), "rps": total / elapsed}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", help="SQLAlchemy URL of an empty PostgreSQL database")
    args = parser.parse_args()

    cluster = None if args.postgres else PostgresCluster.create()
    backends: dict[str, dict[str, str] | None] = {"sqlite": {}}
    if args.postgres or cluster is not None:
        backends["postgresql"] = None  # a fresh database per run
    elif cluster is None:
        print("PostgreSQL: not installed here (apt-get install postgresql), skipped")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedS3(Path(tmp) / "s3") as s3:
        if cluster is not None:
            cluster.start()
        try:
            print(
                f"{args.clients} clients, {args.seconds:.0f} s per run, {args.runs} runs, "
                "medians of the runs' percentiles (ms)"
            )
            print(
                f"{'backend':<11}{'request':<22}{'p50':>8}{'p95':>8}{'p99':>8}{'x floor p95':>13}"
            )
            for backend, env in backends.items():
                runs = []
                for _ in range(args.runs):
                    if env is None:
                        url = args.postgres or (cluster.new_database() if cluster else "")
                        runs.append(
                            run_once(s3, {"FEDPARK_DATABASE_URL": url}, args.clients, args.seconds)
                        )
                    else:
                        runs.append(run_once(s3, env, args.clients, args.seconds))
                _report(backend, runs)
        finally:
            if cluster is not None:
                cluster.remove()


def _report(backend: str, runs: list[dict[str, Any]]) -> None:
    def median(kind: str, q: float) -> float:
        return statistics.median(_percentile(r["latencies"][kind], q) for r in runs)

    floor = median(KINDS[0], 0.95)
    for kind in KINDS:
        p95 = median(kind, 0.95)
        print(
            f"{backend:<11}{kind:<22}{median(kind, 0.5):>8.1f}{p95:>8.1f}"
            f"{median(kind, 0.99):>8.1f}{p95 / floor:>13.1f}"
        )
    rps = statistics.median(r["rps"] for r in runs)
    errors = sum(r["errors"] for r in runs)
    print(f"{backend:<11}{'all':<22}{rps:>8.0f} requests/s, {errors} errors (5xx or none)")


if __name__ == "__main__":
    main()
