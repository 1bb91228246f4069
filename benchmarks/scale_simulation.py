"""350 factories on Flower's simulation engine, running FedPark's ServerApp and ClientApp.

The FedPark arm of the learning benchmarks (``benchmarks/learning/harness.py``: the run spec
the hub builds, FedPark's ServerApp logic and ClientApp functions, contract signature check
and validation of each factory's file included) with ``--factories`` tiny Tennessee Eastman
plants: each plant one normal run and the faults it has seen (each of the 18 observable
faults seen by 2 plants, so most plants see none: a park where faults are rare), runs of
``--hours`` hours, all in mode 1. Every factory trains every round (FedPark's strategies
sample all participants: fraction 1.0, at least the contract's k).

Reports wall time per round, the peak memory of this process and its Ray workers (summed
PSS and RSS, sampled every 0.5 s), and the final macro-F1 on a held-out test set (normal
operation and every fault); then the peer: the same rows held by ``--groups`` factories (3 by
default; the plants' files concatenated in groups, each plant's timeline laid after the
previous one's), the same data in fewer and larger factories.

    python benchmarks/scale_simulation.py --factories 350 --rounds 20 --out scale-out
    python benchmarks/scale_simulation.py --factories 3 --rounds 1 --hours 1 --test-hours 1 \
        --groups 2                                                          # CI smoke
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "learning"))

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from harness import Study, run_fedpark, score_checkpoints, scratch
from rich.console import Console
from rich.progress import Progress

from fedpark.datasets import tep
from fedpark.experiments.protocol import ModelSettings, TrainSettings

console = Console()
MIB = 1 << 20


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _tree(root: int) -> list[int]:
    """``root`` and every process below it (Ray's raylet, GCS and workers)."""
    parents: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (proc / "stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                parents.setdefault(ppid, []).append(int(proc.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += parents.get(pid, [])
    return out


class PeakMemory(threading.Thread):
    """The highest summed PSS and RSS of this process tree, sampled every 0.5 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.done = threading.Event()
        self.pss = self.rss = 0
        self.processes = 0

    def run(self) -> None:
        while not self.done.wait(0.5):
            rss = pss = 0
            pids = _tree(os.getpid())
            for pid in pids:
                with contextlib.suppress(OSError):
                    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                        if line.startswith("Rss:"):
                            rss += int(line.split()[1]) * 1024
                        elif line.startswith("Pss:"):
                            pss += int(line.split()[1]) * 1024
            if pss > self.pss:
                self.pss, self.rss, self.processes = pss, rss, len(pids)


def generate(args: argparse.Namespace, progress: Progress) -> Path:
    folder = scratch("fedpark-scale-tep-")
    plants = tep.plants(args.factories, overlap=2)
    task = progress.add_task(
        f"simulating {args.factories} TEP plants",
        total=tep.runs_needed(plants, normal_runs=1),
    )
    tep.generate(
        folder,
        plants,
        hours=args.hours,
        onset=args.hours / 4,
        normal_runs=1,
        test_hours=args.test_hours,
        test_onset=args.test_hours / 4,
        progress=lambda n: progress.advance(task, n),
    )
    progress.remove_task(task)
    return folder


def grouped(data: Path, files: dict[str, Path], groups: int) -> dict[str, Path]:
    """The plants' files concatenated into ``groups`` factories (plant i to group i % groups).

    Each file is one plant's timeline, all starting at the same moment, and the contract asks
    for time strictly increasing through a file: each plant's timeline is laid after the
    previous one's (shifted, one sampling step later), as a historian holding several lines
    would export them. The readings, runs and labels are the plants' own."""
    out: dict[str, Path] = {}
    names = sorted(files)
    step = pa.scalar(dt.timedelta(seconds=tep.SAMPLE_SECONDS), pa.duration("ms"))
    for g in range(groups):
        tables, end = [], None
        for name in names[g::groups]:
            table = pq.read_table(files[name])
            if end is not None and table.num_rows:
                shift = pc.add(pc.subtract(end, pc.min(table["time"])), step)
                table = table.set_column(
                    table.schema.get_field_index("time"), "time", pc.add(table["time"], shift)
                )
            if table.num_rows:
                end = pc.max(table["time"])
            tables.append(table)
        path = data / "grouped" / f"group-{g + 1}" / "tep.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(tables), path)
        out[f"group-{g + 1}"] = path
    return out


def federate(study: Study, args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    """One FedPark run; wall time per round, peak memory, final macro-F1."""
    n = len(study.factories)
    task = progress.add_task(f"{args.rounds} rounds, {n} factories", total=args.rounds)
    stamps = [time.monotonic()]

    def on_round(_: int) -> None:
        stamps.append(time.monotonic())
        progress.advance(task)

    peak = PeakMemory()
    peak.start()
    load = loadavg()
    try:
        checkpoints = run_fedpark(
            study,
            strategy=args.strategy,
            strategy_params={},
            rounds=args.rounds,
            seed=0,
            work=scratch(f"fedpark-scale-sim-{n}-"),
            threads=args.threads,
            on_round=on_round,
        )
    finally:
        peak.done.set()
        peak.join()
        progress.remove_task(task)
    test = study.test_arrays()
    final = score_checkpoints(study, checkpoints[-1:], test)[-1]
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in study.factories.values())
    times = [b - a for a, b in itertools.pairwise(stamps)]
    return {
        "factories": n,
        "rows": rows,
        "round_s": times,
        "round_later_median_s": sorted(times[1:])[len(times[1:]) // 2] if len(times) > 1 else None,
        "peak_pss_mib": peak.pss / MIB,
        "peak_rss_mib": peak.rss / MIB,
        "peak_processes": peak.processes,
        "macro_f1": final["macro_f1"],
        "accuracy": final["accuracy"],
        "loadavg": f"{load} -> {loadavg()}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factories", type=int, default=350)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hours", type=float, default=2.0, help="length of each plant run")
    parser.add_argument("--test-hours", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=2, help="Ray workers (ClientApps at once)")
    parser.add_argument("--strategy", default="fedavg", help="a FedPark strategy (default params)")
    parser.add_argument("--epochs", type=int, default=2, help="local epochs per round")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.003)
    parser.add_argument(
        "--groups", type=int, default=3, help="the same rows in N factories (0: skip)"
    )
    parser.add_argument("--data", type=Path, help="a folder this script generated before")
    parser.add_argument("--out", type=Path, help="folder for scale_simulation.json")
    args = parser.parse_args(argv)
    started = time.time()
    result: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    with Progress(console=console, transient=True) as progress:
        t0 = time.monotonic()
        data = args.data or generate(args, progress)
        result["generate_s"] = time.monotonic() - t0
        files = {
            p.name: p / "tep.parquet"
            for p in sorted(data.iterdir())
            if (p / "tep.parquet").exists() and p.name not in ("test", "grouped")
        }
        t0 = time.monotonic()
        study = Study.open(
            data / "contract.json",
            files,
            data / "test" / "tep.parquet",
            ModelSettings(kind="mlp", hidden=(64, 64), series="run"),
            TrainSettings(
                epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate
            ),
        )
        result["validate_and_pool_s"] = time.monotonic() - t0
        result["many"] = federate(study, args, progress)
        if args.groups:
            few = dataclasses.replace(study, factories=grouped(data, files, args.groups))
            result["grouped"] = federate(few, args, progress)
    print(
        f"\nFedPark ServerApp + ClientApp on Flower's simulation engine, MLP 64x64, "
        f"{args.strategy}, {args.epochs} local epochs of batch {args.batch_size}, "
        f"{args.rounds} rounds, {args.threads} Ray workers, "
        f"TEP runs of {args.hours} h (data {data})"
    )
    print(
        f"{'factories':>9}{'rows':>8}{'round 1 s':>11}{'later s':>9}{'peak PSS MiB':>14}"
        f"{'peak RSS MiB':>14}{'macro-F1':>10}  load 1/5/15"
    )
    for key in ("many", "grouped"):
        if key not in result:
            continue
        r = result[key]
        later = f"{r['round_later_median_s']:.1f}" if r["round_later_median_s"] else "-"
        print(
            f"{r['factories']:>9}{r['rows']:>8}{r['round_s'][0]:>11.1f}{later:>9}"
            f"{r['peak_pss_mib']:>14.0f}{r['peak_rss_mib']:>14.0f}"
            f"{100 * r['macro_f1']:>10.1f}  {r['loadavg']}"
        )
    print(
        f"generated in {result['generate_s']:.0f} s, validated and pooled in "
        f"{result['validate_and_pool_s']:.0f} s; {time.time() - started:.0f} s in all"
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "scale_simulation.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
