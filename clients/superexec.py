"""``flower-superexec`` whose task poll follows the work.

A factory's SuperNode starts Flower's SuperExec (``flower-superexec``, by name through
``PATH``), which asks the SuperNode for a task to run, sleeps, and asks again, forever, at
one interval read once from ``FLWR_SUPEREXEC_TASK_POLL_INTERVAL``. FedPark sets 100 ms so
that a round's messages start their ClientApps promptly; Flower's default is 1 s. At 100 ms
an idle factory costs ~5 % of a core, all day (docs/scale.md), which a park of idle
factories simulated on one machine, or a factory's small box, pays for nothing.

Here the SuperExec runs unchanged except for that sleep: the configured interval while the
factory is at work (a ClientApp it launched is still running, or one ran in the last
minute, or the SuperExec started less than a minute ago), at least Flower's 1 s once it has
been idle a minute. Work is seen from the SuperExec's own children (each task is a child
process, FedPark's warm launcher included, and lives as long as its task); where the
children cannot be read (not Linux) the configured interval is kept.

The sleep is Flower's module-level ``time`` in that one module, replaced by a clock that
differs only in ``sleep``, and only for the exact code it was written against:
:data:`EXPECTED` holds the sha256 of the function whose sleep it lengthens; any other Flower
runs unchanged (with a warning), and ``tests/clients/test_superexec.py`` fails first.

:func:`install` writes the ``flower-superexec`` that runs this module into a folder of the
factory's Flower home and puts it first on ``PATH``, for the SuperNode
(:mod:`fedpark.clients.node`) to find.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

IDLE_WAIT = 1.0  # Flower's default task poll: the least an idle SuperExec waits
BUSY_FOR = 60.0  # seconds after the last task seen running during which it counts as busy
# sha256 of inspect.getsource() of the function whose sleep is changed, flwr 1.41.0.
EXPECTED = {
    "run_superexec": "d11f4e7fbc8f0b121804772495484fae8987b2b52af8b2baa70baf40d5929e26",
}
COMMAND = "flower-superexec"


def running_children(proc: Path = Path("/proc/self")) -> bool:
    """Whether this process has a child that is running (not a zombie); True when that
    cannot be read, so that an unknown state keeps the configured (short) interval."""
    try:
        pids = [
            pid
            for task in (proc / "task").iterdir()
            for pid in (task / "children").read_text().split()
        ]
        for pid in pids:
            stat = (proc.parent / pid / "stat").read_text()
            # "pid (comm) S ...": the state follows the last ")" (comm may hold one)
            if stat[stat.rindex(")") + 2 :][:1] not in ("Z", "X"):
                return True
    except FileNotFoundError:
        # a child gone between the two reads is not running; no /proc at all is unknown
        return not (proc / "task").is_dir()
    except (OSError, ValueError):
        return True
    return False


class TaskClock:
    """The ``time`` module, but the poll of a SuperExec that has been idle a minute is
    Flower's default (or the configured interval, if that is longer)."""

    def __init__(
        self, clock: ModuleType = time, busy: Callable[[], bool] = running_children
    ) -> None:
        self._clock, self._busy = clock, busy
        # Just started: its SuperNode has just joined, and a run may be waiting for it.
        self.last_busy = clock.monotonic()

    def sleep(self, seconds: float) -> None:
        now = self._clock.monotonic()
        if self._busy():
            self.last_busy = now
        elif now - self.last_busy >= BUSY_FOR:
            seconds = max(seconds, IDLE_WAIT)
        self._clock.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clock, name)


def quicken(module: ModuleType) -> bool:
    """Give ``module`` (Flower's ``run_superexec``) a :class:`TaskClock`, if its code is the
    code this was written against; whether it did."""
    from fedpark.experiments.prompt_pulls import replace_time

    return replace_time(module, EXPECTED, TaskClock(), "the SuperExec's task poll")


def install(home: Path, env: dict[str, str] | os._Environ[str] = os.environ) -> Path:
    """Write ``home/bin/flower-superexec`` (this interpreter, this module) and put its folder
    first on ``env``'s PATH; the folder."""
    folder = home / "bin"
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / COMMAND
    # -P: the SuperNode's working folder is not on the module path
    source = f"#!{sys.executable} -P\nfrom fedpark.clients.superexec import main\nmain()\n"
    partial = folder / f".{COMMAND}.{os.getpid()}"
    partial.write_text(source)
    partial.chmod(0o755)
    partial.replace(script)  # a restarted SuperNode's SuperExec never sees half a file
    path = env.get("PATH", "")
    if path.split(os.pathsep)[0] != str(folder):
        env["PATH"] = os.pathsep.join([str(folder), path]) if path else str(folder)
    return folder


def main() -> None:
    from flwr.supercore.cli import flower_superexec
    from flwr.supercore.superexec import run_superexec  # the module: its `time` is replaced

    quicken(run_superexec)
    sys.argv[0] = COMMAND
    flower_superexec()


if __name__ == "__main__":
    main()
