"""How many factories one machine holds: real SuperNodes on one SuperLink, stepping N up.

Two phases, each with its own SuperLink (``flower-superlink`` as ``fedpark hub serve
--with-superlink`` starts it: in memory, on loopback):

- ``alone``: N SuperNodes started as ``fedpark factory join --cold`` starts them (FedPark's
  SuperNode with its SuperExec, no ClientApp worker): memory per factory and the SuperLink's
  CPU with N idle nodes, N stepping up until the memory budget.
- ``warm``: N factories as ``fedpark factory join`` starts them (a warm ClientApp worker,
  then the SuperNode), and at each step a small real experiment: the run spec the hub
  builds, FedPark's ServerApp and ClientApps (contract signature check, validation,
  training) on tiny TEP plants, started through the SuperLink's Control API
  (``benchmarks/learning/deployment.py``'s way); round time vs N.

Memory is the sum over a factory's processes (each child runs in its own session: the
SuperNode's session holds its SuperExec): RSS, and PSS from ``/proc/PID/smaps_rollup``
(shared pages divided among the processes sharing them: what a factory really adds).
CPU is utime+stime from ``/proc/PID/stat`` over a window, as % of one core. The load average
is recorded with every step: figures taken on a busy machine say so.

Before each step the next one's memory is estimated from the last (PSS per factory x 1.3)
and the step is not taken if it would leave less than ``--reserve-gib`` available; a
watchdog stops everything if available memory ever falls below half the reserve. Every
process is stopped on exit, Ctrl-C or failure (process groups; the kernel kills them if
this process dies: PR_SET_PDEATHSIG).

    python benchmarks/scale_supernodes.py --out scale-out
    python benchmarks/scale_supernodes.py --steps 1,2 --warm-steps 2 --rounds 2 --idle 2  # CI
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "learning"))

from rich.console import Console
from rich.progress import Progress

from fedpark.clients.processes import ChildProcess, free_port
from fedpark.clients.supernode import (
    WarmClientApps,
    flower_env,
    local_superlink_argv,
    supernode_argv,
)

console = Console()
MIB = 1 << 20
TICK = os.sysconf("SC_CLK_TCK")


# -- /proc ------------------------------------------------------------------------------


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        out[key] = int(rest.split()[0]) * 1024
    return out


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def session_pids(leader: int) -> list[int]:
    """Live processes in the session ``leader`` started (ChildProcess: one per child)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == leader:  # field 6: session id
            pids.append(int(proc.name))
    return pids


def memory(pids: list[int]) -> tuple[int, int]:
    """Summed RSS and PSS (bytes) of ``pids``."""
    rss = pss = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
    return rss, pss


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


# -- processes --------------------------------------------------------------------------


@dataclasses.dataclass
class Factory:
    name: str
    config: dict[str, str]
    node: ChildProcess | None = None
    worker: ChildProcess | None = None
    apps: WarmClientApps | None = None

    def processes(self) -> list[ChildProcess]:
        return [p for p in (self.worker, self.node) if p is not None]

    def pids(self, which: ChildProcess | None) -> list[int]:
        return session_pids(which.process.pid) if which and which.process else []


class Fleet:
    """A SuperLink and its factories; stops them all, whatever happens."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.superlink = ChildProcess(
            local_superlink_argv(self.port),
            work / "superlink.log",
            env=flower_env(work / "superlink", superlink=True),
        ).start()
        self.factories: list[Factory] = []
        self.restarts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, name: str, config: dict[str, str], warm: bool) -> Factory:
        home = self.work / "nodes" / name
        home.mkdir(parents=True, exist_ok=True)
        apps = worker = None
        if warm:
            apps = WarmClientApps.create(home)
            worker = ChildProcess(
                apps.worker_argv(), home / "worker.log", env=flower_env(home / "flwr")
            ).start()
        factory = Factory(name, config, None, worker, apps)
        self.factories.append(factory)
        return factory

    def start_node(self, factory: Factory) -> None:
        home = self.work / "nodes" / factory.name
        factory.node = ChildProcess(
            supernode_argv(self.address, free_port(), factory.config),
            home / "supernode.log",
            env=flower_env(home / "flwr", factory.apps),
        ).start()

    def online(self) -> int:
        from flwr.proto.control_pb2 import ListNodesRequest
        from flwr.supercore.control import ControlHttpClient

        control = ControlHttpClient.from_server_address(
            server_address=self.address, insecure=True, root_certificates=None, interceptors=[]
        )
        try:
            nodes = control.ListNodes(ListNodesRequest()).nodes_info
        except Exception:  # still starting
            return 0
        return sum(1 for node in nodes if node.status == "online")

    def restart_dead(self) -> int:
        """Start again the SuperNodes that exited, as ``factory join``'s supervisor does (a
        SuperNode whose registration timed out on a busy SuperLink exits: its retry finds its
        own key "already in use"); how many."""
        dead = [f for f in self.factories if f.node is not None and not f.node.alive()]
        for factory in dead:
            self.start_node(factory)
        self.restarts += len(dead)
        return len(dead)

    def dead(self) -> list[str]:
        out = [] if self.superlink.alive() else ["superlink"]
        for f in self.factories:
            out += [f.name for p in f.processes() if not p.alive()]
        return out

    def stop(self) -> None:
        """SIGTERM to every process group at once, then SIGKILL to what is left."""
        children = [p for f in self.factories for p in f.processes()] + [self.superlink]
        for child in children:
            if child.alive():
                assert child.process is not None
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except Exception:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    child.process.wait(5)
        for f in self.factories:
            if f.apps is not None:
                f.apps.remove()


class Watchdog(threading.Thread):
    """Sets ``tripped`` (and interrupts the main thread) if available memory falls below
    ``floor`` bytes."""

    def __init__(self, floor: int) -> None:
        super().__init__(daemon=True)
        self.floor, self.tripped, self.lowest = floor, threading.Event(), meminfo()["MemAvailable"]
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            available = meminfo()["MemAvailable"]
            self.lowest = min(self.lowest, available)
            if available < self.floor:
                self.tripped.set()
                os.kill(os.getpid(), signal.SIGINT)
                return


# -- measuring --------------------------------------------------------------------------


def wait_online(fleet: Fleet, count: int, progress: Progress, what: str) -> float:
    """Until ``count`` nodes are online; the seconds it took."""
    started = time.monotonic()
    task = progress.add_task(what, total=count)
    deadline = started + 120 + 15 * count
    while (online := fleet.online()) < count:
        progress.update(task, completed=online)
        fleet.restart_dead()  # a node that exits now is started again on the next pass
        if not fleet.superlink.alive():
            raise RuntimeError(f"the SuperLink exited; see {fleet.work}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {online} of {count} nodes online; see {fleet.work}")
        time.sleep(0.5)
    progress.remove_task(task)
    return time.monotonic() - started


def measure(fleet: Fleet, idle: float, progress: Progress) -> dict[str, Any]:
    """Memory per factory and CPU of the SuperLink and of all factories over ``idle`` s."""
    per: list[dict[str, float]] = []
    for f in fleet.factories:
        n_rss, n_pss = memory(f.pids(f.node))
        w_rss, w_pss = memory(f.pids(f.worker))
        per.append(
            {
                "node_rss": n_rss / MIB,
                "node_pss": n_pss / MIB,
                "worker_rss": w_rss / MIB,
                "worker_pss": w_pss / MIB,
                "rss": (n_rss + w_rss) / MIB,
                "pss": (n_pss + w_pss) / MIB,
            }
        )
    assert fleet.superlink.process is not None
    link_pids = session_pids(fleet.superlink.process.pid)
    link_rss, link_pss = memory(link_pids)
    factory_pids = [
        pid
        for f in fleet.factories
        for p in f.processes()
        if p.process
        for pid in session_pids(p.process.pid)
    ]
    load_before = loadavg()
    link0, nodes0, t0 = cpu_ticks(link_pids), cpu_ticks(factory_pids), time.monotonic()
    task = progress.add_task(f"CPU with {len(fleet.factories)} idle nodes", total=idle)
    while (elapsed := time.monotonic() - t0) < idle:
        progress.update(task, completed=elapsed)
        time.sleep(min(0.5, idle - elapsed))
    progress.remove_task(task)
    seconds = time.monotonic() - t0
    link1, nodes1 = cpu_ticks(link_pids), cpu_ticks(factory_pids)
    info = meminfo()
    return {
        "n": len(fleet.factories),
        "per_factory": {k: statistics.median(p[k] for p in per) for k in per[0]},
        "factories_pss_total_mib": sum(p["pss"] for p in per),
        "superlink_rss_mib": link_rss / MIB,
        "superlink_pss_mib": link_pss / MIB,
        "superlink_cpu_pct": 100 * (link1 - link0) / TICK / seconds,
        "factories_cpu_pct": 100 * (nodes1 - nodes0) / TICK / seconds,
        "mem_available_gib": info["MemAvailable"] / (1 << 30),
        "loadavg": f"{load_before} -> {loadavg()}",
    }


def fits(step: int, current: int, per_factory_mib: float, reserve: int) -> bool:
    need = (step - current) * per_factory_mib * 1.3 * MIB
    return meminfo()["MemAvailable"] - need >= reserve


# -- the phases -------------------------------------------------------------------------


def phase_alone(args: argparse.Namespace, work: Path, progress: Progress) -> dict[str, Any]:
    fleet = Fleet(work)
    rows: list[dict[str, Any]] = []
    stopped = "the last step"
    try:
        estimate = 300.0  # MiB per factory before the first measurement
        for step in args.steps:
            if time.monotonic() > args.until:
                stopped = f"the time budget (--minutes {args.minutes:g}) before N={step}"
                break
            if not fits(step, len(fleet.factories), estimate, args.reserve):
                stopped = f"memory budget (next step {step} would leave < {args.reserve_gib} GiB)"
                break
            started = len(fleet.factories)
            for i in range(started, step):
                config = {"org": f"factory-{i + 1:04d}"}
                fleet.start_node(fleet.add(config["org"], config, warm=False))
            try:
                join_s = wait_online(fleet, step, progress, f"{step} SuperNodes joining")
            except RuntimeError as exc:
                stopped = f"N={step}: {exc}"
                break
            row = measure(fleet, args.idle, progress)
            row["join_s"], row["restarts"] = join_s, fleet.restarts
            rows.append(row)
            estimate = max(row["per_factory"]["pss"], 50.0)
            _say_row("alone", row)
        settled = None
        if rows and args.settle:
            # Flower's 3 s idle wait comes back once a node has had no work for a minute
            wait = progress.add_task("nodes settling (60 s without work)", total=args.settle)
            for _ in range(int(args.settle)):
                time.sleep(1)
                progress.advance(wait)
            progress.remove_task(wait)
            settled = measure(fleet, args.idle, progress)
            _say_row("alone, settled", settled)
    finally:
        fleet.stop()
    return {"steps": rows, "settled": settled, "stopped_by": stopped}


def _tiny_study(args: argparse.Namespace, work: Path) -> Any:
    from harness import Study

    from fedpark.datasets import tep
    from fedpark.experiments.protocol import ModelSettings, TrainSettings

    data = work / "tep"
    plants = tep.plants(args.plants)
    tep.generate(data, plants, hours=args.hours, onset=args.hours / 4, test=False)
    files = {p.name: data / p.name / "tep.parquet" for p in plants}
    return Study.open(
        data / "contract.json",
        files,
        files[plants[0].name],  # no test set: nothing is scored here
        ModelSettings(kind="mlp", hidden=(32,), series="run"),
        TrainSettings(epochs=1, batch_size=64, learning_rate=0.003),
    )


def phase_warm(args: argparse.Namespace, work: Path, progress: Progress) -> dict[str, Any]:
    from harness import federated_run

    task = progress.add_task("simulating tiny TEP plants", total=None)
    study = _tiny_study(args, work)
    progress.remove_task(task)
    files = list(study.factories.values())
    k = study.contract.policy.min_factories
    if min(args.warm_steps) < k:  # the ServerApp would wait for k nodes for ever
        raise SystemExit(f"--warm-steps: the TEP contract's k is {k}: every step needs >= {k}")
    fleet = Fleet(work)
    rows: list[dict[str, Any]] = []
    stopped = "the last step"
    try:
        estimate = 800.0
        for step in args.warm_steps:
            if time.monotonic() > args.until:
                stopped = f"the time budget (--minutes {args.minutes:g}) before N={step}"
                break
            if not fits(step, len(fleet.factories), estimate, args.reserve):
                stopped = f"memory budget (next step {step} would leave < {args.reserve_gib} GiB)"
                break
            # N factories, the plants' files in turn (a factory's rows are a plant's)
            names = {f"factory-{i + 1:04d}": files[i % len(files)] for i in range(step)}
            run_study = dataclasses.replace(study, factories=names)
            spec, nodes = federated_run(
                run_study, "fedavg", {}, args.rounds, 0, work / f"run-{step}"
            )
            started = len(fleet.factories)
            new = [fleet.add(c["org"], c, warm=True) for c in nodes[started:]]
            warmup = progress.add_task(
                f"{step - started} ClientApp workers warming", total=len(new)
            )
            for factory in new:  # the SuperNode joins once its worker listens, as join does
                assert factory.apps is not None
                while not factory.apps.socket.exists():
                    if factory.worker is not None and not factory.worker.alive():
                        raise RuntimeError(f"worker of {factory.name} exited; see {work}")
                    time.sleep(0.1)
                progress.advance(warmup)
                fleet.start_node(factory)
            progress.remove_task(warmup)
            try:
                join_s = wait_online(fleet, step, progress, f"{step} SuperNodes joining")
                row = measure(fleet, args.idle, progress)
                row["join_s"], row["restarts"] = join_s, fleet.restarts
                row.update(_rounds(fleet, spec, work / f"run-{step}", args.rounds, progress))
            except RuntimeError as exc:
                stopped = f"N={step}: {exc}"
                break
            rows.append(row)
            estimate = max(row["per_factory"]["pss"], 200.0)
            _say_row("warm", row)
    finally:
        fleet.stop()
    return {"steps": rows, "stopped_by": stopped}


def _rounds(fleet: Fleet, spec: Any, work: Path, rounds: int, progress: Progress) -> dict[str, Any]:
    """One run of ``rounds`` rounds on every factory; seconds per round (the first from the
    run's start: it includes the ServerApp's start-up)."""
    from fedpark.hub.flower.control import FlowerControl

    out = work / "rounds"
    control = FlowerControl(fleet.address)
    load_before = loadavg()
    started = time.monotonic()
    run_id = control.start_run(spec)
    stamps = [started]
    task = progress.add_task(f"{rounds} rounds on {len(fleet.factories)} factories", total=rounds)
    deadline = started + 600 * rounds
    while (status := control.status(run_id)).status != "finished":
        done = len(list(out.glob("checkpoint-*.safetensors")))
        while len(stamps) - 1 < done:
            stamps.append(time.monotonic())
            progress.advance(task)
        if fleet.dead() or time.monotonic() > deadline:
            raise RuntimeError(f"the run did not finish ({fleet.dead()[:5]}); see {work}")
        time.sleep(0.2)
    progress.remove_task(task)
    done = len(list(out.glob("checkpoint-*.safetensors")))
    while len(stamps) - 1 < done:
        stamps.append(time.monotonic())
    if status.sub_status != "completed" or done != rounds:
        raise RuntimeError(f"the run ended {status.sub_status} after {done} rounds; see {work}")
    times = [b - a for a, b in itertools.pairwise(stamps)]
    return {
        "round_s": times,
        "round_later_median_s": statistics.median(times[1:]) if len(times) > 1 else times[0],
        "round_loadavg": f"{load_before} -> {loadavg()}",
    }


def _say_row(phase: str, row: dict[str, Any]) -> None:
    p = row["per_factory"]
    extra = f", rounds {row['round_s']}" if "round_s" in row else ""
    console.print(
        f"[{phase}] N={row['n']}: factory PSS {p['pss']:.0f} MiB (RSS {p['rss']:.0f}), "
        f"SuperLink {row['superlink_pss_mib']:.0f} MiB, CPU {row['superlink_cpu_pct']:.1f} %, "
        f"factories CPU {row['factories_cpu_pct']:.1f} %, load {row['loadavg']}{extra}"
    )


# -- report -----------------------------------------------------------------------------


def print_tables(result: dict[str, Any]) -> None:
    print(
        f"\nmachine: {os.cpu_count()} cores, {result['mem_total_gib']:.1f} GiB; "
        f"reserve {result['reserve_gib']} GiB; medians per factory"
    )
    header = (
        f"{'phase':<7}{'N':>5}{'node RSS':>10}{'node PSS':>10}{'wkr RSS':>9}{'wkr PSS':>9}"
        f"{'PSS/fac':>9}{'link MiB':>10}{'link CPU%':>10}{'nodes CPU%':>11}{'join s':>8}"
        f"{'round s':>9}  load 1/5/15"
    )
    print(header)
    for phase in ("alone", "warm"):
        for row in result.get(phase, {}).get("steps", []):
            p = row["per_factory"]
            rnd = f"{row['round_later_median_s']:.2f}" if "round_s" in row else "-"
            print(
                f"{phase:<7}{row['n']:>5}{p['node_rss']:>10.0f}{p['node_pss']:>10.0f}"
                f"{p['worker_rss']:>9.0f}{p['worker_pss']:>9.0f}{p['pss']:>9.0f}"
                f"{row['superlink_pss_mib']:>10.0f}{row['superlink_cpu_pct']:>10.1f}"
                f"{row['factories_cpu_pct']:>11.1f}{row['join_s']:>8.1f}{rnd:>9}  "
                f"{row['loadavg'].split(' -> ')[0]}"
            )
        if phase in result:
            print(f"{phase:<7}stopped by: {result[phase]['stopped_by']}")
    settled = result.get("alone", {}).get("settled")
    if settled:
        print(
            "alone, settled (a minute without work: Flower's 3 s wait, the SuperExec's 1 s poll): "
            f"N={settled['n']}, "
            f"SuperLink CPU {settled['superlink_cpu_pct']:.1f} %, factories CPU "
            f"{settled['factories_cpu_pct']:.1f} %, load {settled['loadavg']}"
        )


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (mem, rnd) = plt.subplots(1, 2, figsize=(11, 4.2))
    for phase, label in (("alone", "SuperNode alone"), ("warm", "SuperNode + warm worker")):
        steps = result.get(phase, {}).get("steps", [])
        if not steps:
            continue
        n = [r["n"] for r in steps]
        mem.plot(
            n, [r["factories_pss_total_mib"] / 1024 for r in steps], "o-", label=f"{label}: PSS"
        )
        mem.plot(
            n,
            [r["per_factory"]["rss"] * r["n"] / 1024 for r in steps],
            "x--",
            label=f"{label}: RSS x N",
        )
        if phase == "warm":
            rnd.plot(
                n, [r["round_later_median_s"] for r in steps], "o-", label="round (median, later)"
            )
    mem.axhline(result["mem_total_gib"], color="grey", linestyle=":", label="machine memory")
    mem.set_xlabel("factories N")
    mem.set_ylabel("GiB, all factories together")
    mem.set_title("Factory memory on one machine")
    rnd.set_xlabel("factories N")
    rnd.set_ylabel("seconds per round")
    rnd.set_title("Round time (tiny TEP plants, MLP)")
    for ax in (mem, rnd):
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


_TERMINATED = threading.Event()


def _terminate(*_: object) -> None:
    """SIGTERM: stop as Ctrl-C does; a second one exits at once (the kernel then kills the
    children: PR_SET_PDEATHSIG, and their SuperExecs follow their parents)."""
    if _TERMINATED.is_set():
        os._exit(1)
    _TERMINATED.set()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    parser.add_argument("--steps", type=ints, default=ints("1,5,10,25,50,75,100,150,200,300"))
    parser.add_argument("--warm-steps", type=ints, default=ints("2,5,10,20"))
    parser.add_argument("--phases", default="alone,warm")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of the CPU window")
    parser.add_argument("--settle", type=float, default=65.0, help="0: skip the settled CPU")
    parser.add_argument("--minutes", type=float, default=60.0, help="no step starts after")
    parser.add_argument("--reserve-gib", type=float, default=4.0)
    parser.add_argument("--plants", type=int, default=3)
    parser.add_argument("--hours", type=float, default=1.0, help="length of each TEP run")
    parser.add_argument("--out", type=Path, help="folder for scale_supernodes.json and .png")
    args = parser.parse_args(argv)
    args.reserve = int(args.reserve_gib * (1 << 30))
    args.until = time.monotonic() + 60 * args.minutes
    os.environ.setdefault("FLWR_LOG_LEVEL", "WARNING")
    work = Path(__import__("tempfile").mkdtemp(prefix="fedpark-scale-"))
    signal.signal(signal.SIGTERM, _terminate)
    info = meminfo()
    result: dict[str, Any] = {
        "mem_total_gib": info["MemTotal"] / (1 << 30),
        "mem_available_start_gib": info["MemAvailable"] / (1 << 30),
        "reserve_gib": args.reserve_gib,
        "cores": os.cpu_count(),
        "loadavg_start": loadavg(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    watchdog = Watchdog(args.reserve // 2)
    watchdog.start()
    try:
        with Progress(console=console, transient=True) as progress:
            for phase in args.phases.split(","):
                run = phase_alone if phase == "alone" else phase_warm
                result[phase] = run(args, work / phase, progress)
    except KeyboardInterrupt:
        if not watchdog.tripped.is_set():
            raise
        result["aborted"] = "available memory fell below half the reserve: everything stopped"
        console.print(f"[red]{result['aborted']}[/red]")
    finally:
        watchdog.done.set()
    result["mem_available_lowest_gib"] = watchdog.lowest / (1 << 30)
    result["loadavg_end"] = loadavg()
    print_tables(result)
    print(f"lowest available memory: {result['mem_available_lowest_gib']:.1f} GiB (work {work})")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "scale_supernodes.json").write_text(json.dumps(result, indent=1))
        plot(result, args.out / "scale_supernodes.png")
        print(f"wrote {args.out / 'scale_supernodes.json'} and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
