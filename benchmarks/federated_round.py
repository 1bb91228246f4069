"""Per-round wall time of a FedPark experiment against a bare Flower app.

Same machine, same factories' data files, same MLP, same FedAvg, same local training; the
peer (``benchmarks/bare_flower_app``) has no hub, no contract checks, no reporting. Both run on
Flower's deployment engine (a SuperLink and one SuperNode per factory); FedPark's factories
join as ``fedpark factory join`` does (warm ClientApps, the busy SuperNode's short wait), the
peer's SuperNodes are Flower's own. Round 1 includes process start-up; the last line is the
speedup on the median of the later rounds.

    python benchmarks/federated_round.py --factories 3 --rounds 6
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

from flwr.cli.build import build_fab_from_disk
from flwr.common.serde import fab_to_proto, user_config_to_proto
from flwr.proto.control_pb2 import ListRunsRequest, StartRunRequest
from flwr.supercore.control import ControlHttpClient
from flwr.supercore.fab import Fab

from fedpark.clients.cli.demo import Park, approve_contract, join_factories
from fedpark.clients.processes import ChildProcess, free_port
from fedpark.clients.supernode import flower_env, local_superlink_argv, supernode_argv
from fedpark.contracts import Contract
from fedpark.experiments.features import plan_from_contract
from fedpark.experiments.protocol.plan import ModelSettings, StrategyName, TrainSettings

BARE_APP = Path(__file__).parent / "bare_flower_app"


def fedpark_rounds(
    work: Path, factories: int, rounds: int, hours: float
) -> tuple[list[float], dict]:
    park = Park(work, factories)
    try:
        park.start(None)
        park.populate()
        document = approve_contract(park)
        join_factories(park, document, hours)
        park.wait_for_factories()
        # the peer's work: the per-row MLP with FedAvg (the demo trains a temporal CNN)
        launch = park.launch_body(document, rounds, "bench").model_copy(
            update={
                "model": ModelSettings(kind="mlp", hidden=(64, 64), series="run"),
                "train": TrainSettings(epochs=2, batch_size=64, learning_rate=0.003),
                "strategy": StrategyName.FEDAVG,
            }
        )
        with park.api("researcher") as researcher:
            experiment = researcher.launch(launch).id
            while researcher.experiment(experiment).status in ("pending", "running"):
                time.sleep(1)
            state = researcher.experiment(experiment)
            done = researcher.rounds(experiment)
    finally:
        park.stop()
    if state.status != "finished" or state.started_at is None:
        raise SystemExit(f"FedPark run ended {state.status}: {state.error}")
    stamps = [state.started_at.timestamp()] + [r.created_at.timestamp() for r in done]
    return [b - a for a, b in itertools.pairwise(stamps)], document


def bare_rounds(work: Path, document: dict, data: list[Path], rounds: int) -> list[float]:
    contract = Contract.model_validate(document)
    plan = plan_from_contract(contract, "classification")
    (work / "contract.json").write_text(json.dumps(document))
    link = free_port()
    processes = [
        ChildProcess(
            local_superlink_argv(link),
            work / "superlink.log",
            env=flower_env(work / "superlink", superlink=True),
        ).start()
    ]
    try:
        for i, path in enumerate(data):
            config = {"data-path": str(path), "contract": str(work / "contract.json")}
            processes.append(
                ChildProcess(
                    supernode_argv(f"127.0.0.1:{link}", free_port(), config),
                    work / f"node{i}.log",
                    env=flower_env(work / f"node{i}"),
                ).start()
            )
        fab = build_fab_from_disk(BARE_APP)
        request = StartRunRequest(
            fab=fab_to_proto(Fab(hashlib.sha256(fab).hexdigest(), fab, {})),
            override_config=user_config_to_proto(
                {
                    "rounds": rounds,
                    "hidden": 64,
                    "features": plan.n_features,
                    "classes": len(plan.classes or ()),
                    "timings": str(work / "timings.json"),
                }
            ),
        )
        control = ControlHttpClient.from_server_address(
            server_address=f"127.0.0.1:{link}",
            insecure=True,
            root_certificates=None,
            interceptors=[],
        )
        for _ in range(60):  # the SuperLink may still be starting
            try:
                run_id = control.StartRun(request).run_id
                break
            except Exception:
                time.sleep(0.5)
        while _status(control, run_id) != "finished":
            time.sleep(1)
    finally:
        for process in reversed(processes):
            process.stop()
    stamps = json.loads((work / "timings.json").read_text())
    return [b - a for a, b in itertools.pairwise(stamps)]


def _status(control: ControlHttpClient, run_id: int) -> str:
    return str(control.ListRuns(ListRunsRequest(run_id=run_id)).run_dict[run_id].status.status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factories", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--hours", type=float, default=12.0, help="length of each TEP run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fedpark-rounds-"))
    fedpark, document = fedpark_rounds(work / "fedpark", args.factories, args.rounds, args.hours)
    data = sorted((work / "fedpark").glob("plants/plant-*/tep.parquet"))
    (work / "bare").mkdir()
    bare = bare_rounds(work / "bare", document, data, args.rounds)
    print(
        f"\n{args.factories} TEP plants x {args.hours} h runs, MLP 64x64, FedAvg, 2 local epochs, "
        f"{args.rounds} rounds (work dir {work})"
    )
    print(f"{'app':<28}{'round 1 s':>11}{'median later s':>16}   {'later rounds s'}")
    for name, times in (("bare Flower app", bare), ("FedPark (hub, contracts)", fedpark)):
        later = times[1:]
        print(
            f"{name:<28}{times[0]:>11.2f}{statistics.median(later):>16.2f}   "
            f"{', '.join(f'{t:.1f}' for t in later)}"
        )
    ours, peer = statistics.median(fedpark[1:]), statistics.median(bare[1:])
    print(
        f"speedup: {peer / ours:.1f}x (FedPark median {ours:.2f} s, bare Flower median "
        f"{peer:.2f} s per round)"
    )


if __name__ == "__main__":
    main()
