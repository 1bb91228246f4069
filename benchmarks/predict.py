"""``fedpark model predict`` against a bare torch loop over the same arrays.

FedPark's path reads a Parquet file of Tennessee-Eastman-shaped rows (52 sensors, the
operating mode, ids, time, the fault label), validates every batch against the model's
contract, encodes it with the model's feature plan, runs the network and writes a Parquet
file of predictions (row, ids, time, label, class, probabilities). The peer is the floor of
any such tool: the network alone over the already-encoded arrays in memory, in the same
batch size, with softmax. The ratio is FedPark's time over the peer's (target: <= 1.5).

A second measurement runs the command line itself in a child process on the same file and
reports its peak resident memory (target: < 1 GiB whatever the file's size).

    python benchmarks/predict.py --rows 1000000 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from modelfolders import write_folder

from fedpark.contracts import Contract, validate_file
from fedpark.datasets.tep import MODES, contract_document
from fedpark.experiments.features import FeaturePlan, encode_inputs, plan_from_contract
from fedpark.experiments.models import ModelSpec, build_model
from fedpark.experiments.protocol.package import ModelPackage, Normalization
from fedpark.experiments.protocol.plan import ModelSettings
from fedpark.experiments.serving.folder import open_model
from fedpark.experiments.serving.network import FORWARD_BATCH, load_network
from fedpark.experiments.serving.predict import predict_file, prediction_contract
from fedpark.experiments.weights import to_safetensors


def rows_of(contract: Contract, n: int, seed: int = 0) -> pa.Table:
    """Rows that meet the contract: every sensor uniform within its rules' range."""
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    for column in contract.columns:
        name, rules = column.name, column.rules
        if name == "time":
            ms = 1_767_225_600_000 + np.arange(n, dtype=np.int64) * 180_000
            columns[name] = pa.array(ms, pa.timestamp("ms", tz="UTC"))
        elif name in ("plant", "run"):
            columns[name] = pa.array(np.repeat(["p1", "p2"], [n // 2, n - n // 2]))
        elif name == "operating_mode":
            columns[name] = pa.array(rng.choice(list(MODES), n))
        elif name == "fault":
            columns[name] = pa.array(rng.choice(rules.allowed_values or [0], n).astype(np.int8))
        else:
            low, high = float(rules.min or 0.0), float(rules.max or 1.0)
            columns[name] = pa.array(rng.uniform(low, high, n), column.arrow_type)
    return pa.table(columns)


def model_dir(folder: Path, contract: dict[str, Any], table: pa.Table, kind: str) -> Path:
    series = "run" if kind == "tcnn" else None
    settings = ModelSettings.model_validate(
        {"kind": kind, "hidden": (64, 64), "window": 16, "series": series}
    )
    plan = plan_from_contract(Contract.model_validate(contract), "classification", settings.series)
    norm = Normalization(
        mean={c: float(np.mean(table[c].to_numpy())) for c in plan.numeric},
        std={c: float(np.std(table[c].to_numpy())) or 1.0 for c in plan.numeric},
    )
    net = build_model(ModelSpec.of(settings), plan.n_features, len(plan.classes or ()))
    package = ModelPackage(architecture=settings, features=plan.described(norm), contract=contract)
    write_folder(folder, to_safetensors(net.state_dict()), package, Ed25519PrivateKey.generate())
    return folder


@torch.inference_mode()
def bare_torch(net: torch.nn.Module, x: np.ndarray, window: int | None) -> float:
    """The network over in-memory arrays, softmax included: the floor."""
    started = time.perf_counter()
    if window is None:
        for i in range(0, len(x), FORWARD_BATCH):
            torch.softmax(net(torch.from_numpy(x[i : i + FORWARD_BATCH])), dim=1)
    else:
        view = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)
        for i in range(0, len(view), FORWARD_BATCH):
            chunk = np.ascontiguousarray(view[i : i + FORWARD_BATCH].transpose(0, 2, 1))
            torch.softmax(net(torch.from_numpy(chunk)), dim=1)
    return time.perf_counter() - started


# The command line in a child process that reports its own peak resident memory (KiB):
# VmHWM, since ru_maxrss would carry this process's peak across the child's exec.
CHILD = """
import sys
from fedpark.clients.cli.main import main
sys.argv = ["fedpark", "model", "predict", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(status, file=sys.stderr)
"""


def peak_rss_mib(folder: Path, data: Path, out: Path) -> float:
    """The command line's peak resident memory, in its own process."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(data), "-o", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--kinds", default="mlp,tcnn")
    parser.add_argument("--no-memory", action="store_true", help="Skip the peak-RSS run.")
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    document = contract_document("park-operator")
    contract = Contract.model_validate(document)
    table = rows_of(contract, args.rows)
    print(
        f"{args.rows:,} rows x {table.num_columns} columns; torch threads {torch.get_num_threads()}"
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "rows.parquet"
        pq.write_table(table, data)
        size = data.stat().st_size / 2**20
        for kind in args.kinds.split(","):
            model = open_model(model_dir(root / kind, document, table, kind))
            plan = FeaturePlan.of(model.package.features)
            x = encode_inputs(table, plan, model.package.features.normalization)
            if model.package.window:  # one series per plant run in this file
                x = x[: args.rows // 2]
            net = load_network(model)
            fedpark, bare, checks = [], [], []
            view = prediction_contract(model.contract, with_label=True)
            for _ in range(args.runs):
                started = time.perf_counter()
                predict_file(model, data, root / "out.parquet")
                fedpark.append(time.perf_counter() - started)
                bare.append(bare_torch(net, x, model.package.window))
                started = time.perf_counter()
                validate_file(view, data)
                checks.append(time.perf_counter() - started)
            if model.package.window:
                bare = [2 * b for b in bare]  # the file holds two series of that length
            f, b = statistics.median(fedpark), statistics.median(bare)
            rss = None if args.no_memory else peak_rss_mib(root / kind, data, root / "cli.parquet")
            results.append((kind, f, b, statistics.median(checks), rss))
    print(f"\nfile: {size:.0f} MiB Parquet; medians of {args.runs} runs")
    print("(read + validate: the contract's validator alone over the same file)")
    print(
        f"{'model':<6} {'fedpark s':>10} {'bare torch s':>13} {'ratio':>7} "
        f"{'read+validate s':>16} {'rows/s':>12} {'peak RSS':>10}"
    )
    for kind, f, b, v, rss in results:
        memory = f"{rss:.0f} MiB" if rss is not None else "-"
        print(
            f"{kind:<6} {f:>10.2f} {b:>13.2f} {f / b:>7.2f} {v:>16.2f} "
            f"{args.rows / f:>12,.0f} {memory:>10}"
        )


if __name__ == "__main__":
    main()
