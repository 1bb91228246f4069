"""The hub under 350 factories' traffic: declarations, joins and a run's round reports.

A real hub (``fedpark hub serve`` in its own process, embedded S3, SQLite; PostgreSQL too
where ``tests/postgres.py`` can make a throwaway cluster) with ``--factories`` factory
organizations, each with its own factory user and token (set up first, not measured), and
one approved contract. Then, measured, per run:

- **declare**: every factory declares its dataset (``POST .../datasets``: the validation
  report and profile ``fedpark contract declare`` sends), ``--concurrency`` at a time;
- **join**: every factory makes the calls ``fedpark factory join`` makes before starting
  its SuperNode (``GET /me``, ``GET /federation``, ``GET /datasets``: its own declarations),
  ``--concurrency`` at a time: the park's factories all (re)joining at once, after a
  restart of the park, say;
- **round reports**: one run's ServerApp reporting ``--rounds`` rounds as it does (``PUT
  /runs/{id}/rounds/{n}/checkpoint`` with a ``--model-kib`` checkpoint, then ``POST
  /runs/{id}/rounds`` with every factory's result: ``--factories`` train and evaluate
  entries), with the run's token; the run is written to the catalog as a launch leaves it
  (``tests/harness.running_experiment``, every factory invited: an experiment takes up to
  ``MAX_FACTORIES``, 1,000).

Latencies per request kind (p50/p95/p99, ms), medians over ``--runs``; the load average is
printed with every run (this machine's other jobs share its cores). Rate limits are off (as
in ``hub_load.py``): 350 factories behind one address would otherwise be limited as one.

    python benchmarks/scale_hub.py --factories 350 --runs 3
    python benchmarks/scale_hub.py --factories 5 --runs 1 --rounds 2 --no-postgres   # CI
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import (
    HubProcess,
    _sha256,
    add_member,
    add_org,
    free_port,
    hub_env,
    new_contract,
)
from postgres import PostgresCluster
from rich.console import Console
from rich.progress import Progress
from samples import sensor_table

from fedpark.contracts import Contract, validate_table
from fedpark.experiments.protocol.reports import FactoryResult, RoundReport
from fedpark.hub.storage.embedded import EmbeddedS3

console = Console()
KINDS = (
    "POST .../datasets (declare)",
    "GET /me (join)",
    "GET /federation (join)",
    "GET /datasets (join)",
    "PUT .../checkpoint (round)",
    "POST /runs/.../rounds (round)",
)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _ok(answer: httpx.Response) -> Any:
    if answer.status_code >= 300:
        what = f"{answer.request.method} {answer.request.url}: {answer.status_code}"
        raise RuntimeError(f"{what} {answer.text[:500]}")
    return answer.json() if answer.content else None


def setup(hub: HubProcess, factories: int, progress: Progress) -> tuple[dict[str, Any], list]:
    """An approved contract and ``factories`` organizations with a factory token each."""
    with hub.client(hub.admin_token) as admin:
        steward = add_member(admin, "scale-steward", "park-operator", "steward")
        researcher = add_member(admin, "scale-researcher", "park-operator", "researcher")
        names = [f"factory-{i + 1:04d}" for i in range(factories)]
        task = progress.add_task(f"{factories} organizations, users, tokens", total=factories)

        def make(org: str) -> Any:
            with hub.client(hub.admin_token) as own:
                add_org(own, org)
                member = add_member(own, f"{org}-bot", org, "factory")
            progress.advance(task)
            return member

        with ThreadPoolExecutor(8) as pool:
            members = list(pool.map(make, names))
        progress.remove_task(task)
    contract = new_contract("park-operator")
    contract["policy"] = contract["policy"] | {
        "experiment_orgs": ["park-operator"],
        "model_download_orgs": ["park-operator"],
    }
    path = f"/contracts/{contract['id']}/versions/{contract['version']}"
    with hub.client(researcher.token) as client:
        _ok(client.post("/contracts", json=contract))
        _ok(client.post(f"{path}/submit"))
    with hub.client(steward.token) as client:
        _ok(client.post(f"{path}/approve"))
    return contract, members


STATUSES: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


def timed(kind: str, out: dict[str, list[float]], call: Any) -> bool:
    started = time.perf_counter()
    try:
        status = str(call().status_code)
    except httpx.TransportError:
        status = "no answer"
    out[kind].append(time.perf_counter() - started)
    if not status.startswith("2"):
        STATUSES[kind][status] += 1
    return not status.startswith("2")


def run_once(
    hub: HubProcess,
    contract: dict[str, Any],
    members: list,
    declarations: list[dict[str, Any]],
    args: argparse.Namespace,
    number: int,
    progress: Progress,
) -> dict[str, Any]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    path = f"/contracts/{contract['id']}/versions/{contract['version']}/datasets"
    load = loadavg()
    phases: dict[str, float] = {}

    def declare(i: int) -> None:
        body = declarations[i % len(declarations)] | {"name": f"line-{number}"}
        with hub.client(members[i].token) as client:
            kind = KINDS[0]
            errors[kind] += timed(kind, latencies, lambda: client.post(path, json=body))
        progress.advance(task)

    def join(i: int) -> None:
        with hub.client(members[i].token) as client:
            for kind, url in zip(KINDS[1:4], ("/me", "/federation", "/datasets"), strict=True):
                errors[kind] += timed(kind, latencies, lambda u=url: client.get(u))
        progress.advance(task)

    for name, work in (("declare", declare), ("join", join)):
        task = progress.add_task(f"run {number}: {len(members)} factories {name}", total=None)
        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(work, range(len(members))))
        phases[name] = time.perf_counter() - started
        progress.remove_task(task)

    orgs = [m.org_id for m in members]
    experiment, run_token = running_run(hub, contract, orgs)
    weights = bytes(args.model_kib * 1024)
    headers = {"Content-Type": "application/octet-stream"}
    task = progress.add_task(f"run {number}: {args.rounds} round reports", total=args.rounds)
    started = time.perf_counter()
    with httpx.Client(
        base_url=f"{hub.url}/api/v1",
        headers={"Authorization": f"Bearer {run_token}"},
        timeout=120,
    ) as run:
        for n in range(1, args.rounds + 1):
            report = RoundReport(
                round=n,
                contributors=orgs,
                min_factories=2,
                train_factories=[
                    FactoryResult(org=o, node_id=i + 1, examples=400, metrics={"loss": 0.5})
                    for i, o in enumerate(orgs)
                ],
                evaluate_factories=[
                    FactoryResult(
                        org=o, node_id=i + 1, examples=100, metrics={"loss": 0.6, "macro_f1": 0.7}
                    )
                    for i, o in enumerate(orgs)
                ],
                train={"loss": 0.5},
                evaluate={"loss": 0.6, "macro_f1": 0.7},
            ).model_dump(mode="json")
            kind = KINDS[4]
            url = f"/runs/{experiment}/rounds/{n}/checkpoint"
            errors[kind] += timed(
                kind, latencies, lambda u=url: run.put(u, content=weights, headers=headers)
            )
            kind = KINDS[5]
            errors[kind] += timed(
                kind, latencies, lambda r=report: run.post(f"/runs/{experiment}/rounds", json=r)
            )
            progress.advance(task)
    phases["round reports"] = time.perf_counter() - started
    progress.remove_task(task)
    return {
        "latencies": dict(latencies),
        "errors": dict(errors),
        "phases_s": phases,
        "loadavg": f"{load} -> {loadavg()}",
        "report_bytes": len(json.dumps(report)),
    }


def running_run(hub: HubProcess, contract: dict[str, Any], orgs: list[str]) -> tuple[str, str]:
    """A running experiment of every factory and its run token, written to the catalog as a
    launch leaves it (``tests/harness.running_experiment``), with every factory invited."""
    import secrets
    import uuid

    from fedpark.experiments.protocol.resources.experiments import ExperimentCreate
    from fedpark.hub.services.tokens import hash_token
    from fedpark.hub.storage import Catalog
    from fedpark.hub.storage.models import Experiment

    token = "fprun_" + secrets.token_urlsafe(32)
    experiment_id = f"exp-{uuid.uuid4().hex[:12]}"
    settings = ExperimentCreate(
        name="scale",
        contract_id=contract["id"],
        contract_version=contract["version"],
        participants=orgs,
        min_factories=2,
    )
    catalog = Catalog(hub.database_url)
    with catalog.unit_of_work() as uow:
        uow.experiments.add(
            Experiment(
                id=experiment_id,
                name="scale",
                contract_id=contract["id"],
                contract_version=contract["version"],
                contract_sha256=_sha256(contract),
                org_id="park-operator",
                created_by="scale-researcher",
                status="running",
                settings=settings,
                participants=orgs,
                run_token_hash=hash_token(token),
            )
        )
    return experiment_id, token


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def summarize(backend: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for kind in KINDS:
        values = [r["latencies"].get(kind, []) for r in runs]
        if not all(values):
            continue
        table[kind] = {
            q: statistics.median(percentile(v, p) for v in values)
            for q, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        }
        table[kind]["errors"] = sum(r["errors"].get(kind, 0) for r in runs)
    phases = {k: statistics.median(r["phases_s"][k] for r in runs) for k in runs[0]["phases_s"]}
    return {"backend": backend, "table": table, "phases_s": phases, "runs": runs}


def print_summary(summary: dict[str, Any], args: argparse.Namespace) -> None:
    backend = summary["backend"]
    for kind, row in summary["table"].items():
        print(
            f"{backend:<11}{kind:<32}{row['p50']:>8.1f}{row['p95']:>8.1f}{row['p99']:>8.1f}"
            f"{row['errors']:>7}"
        )
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in summary["phases_s"].items())
    loads = "; ".join(r["loadavg"] for r in summary["runs"])
    print(f"{backend:<11}phases (median): {phases}; load per run: {loads}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factories", type=int, default=350)
    parser.add_argument("--concurrency", type=int, default=32, help="factories at once")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--model-kib", type=int, default=64, help="checkpoint size")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--out", type=Path, help="folder for scale_hub.json")
    args = parser.parse_args(argv)

    sample = new_contract("park-operator")
    parsed = Contract.model_validate(sample)
    declarations = [
        validate_table(parsed, sensor_table(rows=200, seed=s))
        .declaration("line")
        .model_dump(mode="json")
        for s in range(8)
    ]
    cluster = None if args.no_postgres else PostgresCluster.create()
    backends = ["sqlite"] + (["postgresql"] if cluster is not None else [])
    summaries = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddedS3(Path(tmp) / "s3") as s3:
        if cluster is not None:
            cluster.start()
        try:
            with Progress(console=console, transient=True) as progress:
                for backend in backends:
                    extra = {}
                    if backend == "postgresql":
                        assert cluster is not None
                        extra["FEDPARK_DATABASE_URL"] = cluster.new_database()
                    hub = HubProcess(
                        Path(tmp) / f"hub-{backend}",
                        hub_env(s3, **extra),
                        # a SuperLink beside it, as a park runs it: /federation answers
                        extra=("--with-superlink", "--superlink-port", str(free_port())),
                    ).start()
                    try:
                        t0 = time.perf_counter()
                        contract, members = setup(hub, args.factories, progress)
                        parsed = Contract.model_validate(contract)
                        declarations = [
                            validate_table(parsed, sensor_table(rows=200, seed=s))
                            .declaration("line")
                            .model_dump(mode="json")
                            for s in range(8)
                        ]
                        setup_s = time.perf_counter() - t0
                        runs = [
                            run_once(hub, contract, members, declarations, args, n + 1, progress)
                            for n in range(args.runs)
                        ]
                    finally:
                        hub.stop()
                    summary = summarize(backend, runs)
                    summary["setup_s"] = setup_s
                    summaries.append(summary)
        finally:
            if cluster is not None:
                cluster.remove()
    print(
        f"\n{args.factories} factories, {args.concurrency} at once, {args.rounds} round reports "
        f"of {args.factories} factories each ({summaries[0]['runs'][0]['report_bytes']} bytes) "
        f"and a {args.model_kib} KiB checkpoint; medians of {args.runs} runs' percentiles (ms)"
    )
    if STATUSES:
        print("failed answers:", json.dumps(STATUSES))
    print(f"{'backend':<11}{'request':<32}{'p50':>8}{'p95':>8}{'p99':>8}{'errors':>7}")
    for summary in summaries:
        print_summary(summary, args)
        print(f"{summary['backend']:<11}set-up ({args.factories} orgs): {summary['setup_s']:.0f} s")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "scale_hub.json").write_text(json.dumps(summaries, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
