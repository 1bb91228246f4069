"""The FedPark arm of a learning benchmark on Flower's deployment engine.

The same run as ``harness.run_fedpark`` (the same run spec, node configs, ServerApp and
ClientApp), but over gRPC: a Flower SuperLink and one SuperNode per factory, each with its
warm ClientApp worker, started as ``fedpark factory join`` starts them; the run is started
through the SuperLink's Control API as the hub starts it (``fedpark.hub.flower.control``).
It writes its per-round checkpoints into the run's folder, like the simulation arm.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import Study, collected_checkpoints, federated_run

from fedpark.clients.processes import ChildProcess, free_port
from fedpark.clients.supernode import (
    WarmClientApps,
    flower_env,
    local_superlink_argv,
    supernode_argv,
    wait_for_nodes,
)
from fedpark.hub.flower.control import FlowerControl

FINISHED = "finished"
ROUND_LIMIT = 600.0  # seconds a round may take before the run counts as stuck


def run_deployed(
    study: Study,
    *,
    strategy: str,
    strategy_params: dict[str, float],
    rounds: int,
    seed: int,
    work: Path,
    on_round: Callable[[int], None] | None = None,
    **_: Any,
) -> list[Path]:
    """Train with FedPark's apps on a SuperLink and SuperNodes; the per-round checkpoints."""
    spec, nodes = federated_run(study, strategy, strategy_params, rounds, seed, work)
    out = work / "rounds"
    link = free_port()
    processes = [
        ChildProcess(
            local_superlink_argv(link),
            work / "superlink.log",
            env=flower_env(work / "superlink", superlink=True),
        ).start()
    ]
    warm: list[WarmClientApps] = []
    try:
        for config in nodes:
            home = Path(config["work-dir"])
            apps = WarmClientApps.create(home)
            warm.append(apps)
            env = flower_env(home / "flwr")
            processes.append(ChildProcess(apps.worker_argv(), home / "worker.log", env=env).start())
            _wait_for(apps.socket, processes[-1])
            processes.append(
                ChildProcess(
                    supernode_argv(f"127.0.0.1:{link}", free_port(), config),
                    home / "supernode.log",
                    env=flower_env(home / "flwr", apps),
                ).start()
            )
        if wait_for_nodes(f"127.0.0.1:{link}", len(nodes), timeout=180) < len(nodes):
            raise RuntimeError(f"not every SuperNode came online: see {work}")
        control = FlowerControl(f"127.0.0.1:{link}")
        run_id = control.start_run(spec)
        # a round takes seconds here; a run stuck this long has lost a process
        deadline = time.monotonic() + rounds * ROUND_LIMIT
        seen = 0
        while (status := control.status(run_id)).status != FINISHED:
            seen = _report_rounds(out, seen, on_round)
            dead = [p for p in processes if not p.alive()]
            if dead or time.monotonic() > deadline:
                why = "a process exited" if dead else "it ran past its deadline"
                raise RuntimeError(f"the deployed run did not finish ({why}): see {work}")
            time.sleep(0.5)
        _report_rounds(out, seen, on_round)
        if status.sub_status != "completed":
            raise RuntimeError(f"the deployed run ended {status.sub_status}: see {work}")
    finally:
        for process in reversed(processes):
            process.stop()
        for apps in warm:
            apps.remove()
    return collected_checkpoints(out, rounds)


def _report_rounds(out: Path, seen: int, on_round: Callable[[int], None] | None) -> int:
    """Tell ``on_round`` of the checkpoints written since ``seen``; how many there are."""
    done = len(list(out.glob("checkpoint-*.safetensors")))
    for number in range(seen + 1, done + 1):
        if on_round:
            on_round(number)
    return done


def _wait_for(socket: Path, worker: ChildProcess, timeout: float = 120.0) -> None:
    """Until the warm worker listens (it has imported Flower and torch)."""
    deadline = time.monotonic() + timeout
    while not socket.exists():
        if not worker.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the ClientApp worker did not start:\n{worker.log_tail()}")
        time.sleep(0.1)
