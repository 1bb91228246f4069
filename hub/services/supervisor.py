"""Keeps the hub's experiments in line with their Flower runs, and resumes lost runs.

Flower 1.41's ServerApp is a child of its SuperLink: when the SuperLink restarts (an update, a
crash, a moved machine) the run's record survives in the SuperLink's database but its
ServerApp does not, and Flower marks the run failed with no word from FedPark's code. The
supervisor tells such a loss from a real failure (a real failure is reported by the ServerApp
itself, which closes the experiment first) and starts a continuation run: the same experiment,
its spec, a new run token, and the last complete round's checkpoint as the starting weights.

::

    Flower says           the experiment is        the supervisor
    ------------------    ---------------------    -----------------------------------------
    running               pending                  marks it running
    finished: completed   (closed by the report)   nothing
    finished: stopped     pending | running        marks it stopped
    finished: failed      pending | running        resumes it from its last checkpoint
    no such run           pending | running        resumes it (a SuperLink without its state)
    (no round for long)   pending | running        stops the run: too few factories reachable
"""

from __future__ import annotations

import contextlib
import logging

from fedpark.experiments.protocol import HubOutput, RunSpec
from fedpark.experiments.protocol.resources.experiments import Restart
from fedpark.hub.errors import ConflictError, FlowerUnavailableError
from fedpark.hub.flower.control import RUN_UNKNOWN, FlowerControl, RunStatus, Status, SubStatus
from fedpark.hub.lifecycle import ACTIVE, ExperimentStatus
from fedpark.hub.services.experiments import set_status
from fedpark.hub.services.tokens import hash_token, new_run_token
from fedpark.hub.storage import Storage
from fedpark.hub.storage.models import Experiment, utcnow

log = logging.getLogger(__name__)

STALL_MARGIN_SECONDS = 30.0


class RunSupervisor:
    """Watches active experiments through the SuperLink's Control API.

    Parameters
    ----------
    storage
        The hub's catalog and object store.
    flower
        The SuperLink's Control API; None on a hub without Flower (nothing to watch).
    hub_url
        Where a continuation's ServerApp reports (the same as the original run's).
    max_restarts
        How many times one experiment may be resumed before a loss counts as its failure:
        a run whose SuperLink keeps dying must end, not loop.
    """

    def __init__(
        self, storage: Storage, flower: FlowerControl | None, hub_url: str, max_restarts: int
    ) -> None:
        self.storage = storage
        self.flower = flower
        self.hub_url = hub_url
        self.max_restarts = max_restarts

    def watch(self) -> None:
        """One pass over the active experiments (the hub's watcher calls it every 2 s)."""
        if self.flower is None:
            return
        with self.storage.unit_of_work() as uow:
            active = uow.experiments.search(offset=0, limit=1000, statuses=tuple(ACTIVE))
        for row in active:
            if row.flower_run_id is None:
                continue
            try:
                state = self.flower.status(int(row.flower_run_id))
            except FlowerUnavailableError as exc:
                log.warning("cannot watch %s: %s", row.id, exc)
                continue
            self._follow(row, state)

    def _stop(self, run_id: int) -> None:
        """Stop a run; one Flower has finished already needs nothing more."""
        assert self.flower is not None
        with contextlib.suppress(ConflictError):
            self.flower.stop(run_id)

    def _follow(self, row: Experiment, state: RunStatus) -> None:
        if state.status == RUN_UNKNOWN or (
            state.status == Status.FINISHED and state.sub_status == SubStatus.FAILED
        ):
            # The experiment is still open, so FedPark's ServerApp never reported a failure:
            # the run was lost with its SuperLink or its process, not ended by its own error.
            self._resume(row, state.details or "Flower reports the run failed")
            return
        if state.status == Status.FINISHED and state.sub_status == SubStatus.STOPPED:
            set_status(
                self.storage, row.id, ExperimentStatus.STOPPED, state.details or "stopped in Flower"
            )
            return
        if state.status == Status.RUNNING and row.status == ExperimentStatus.PENDING:
            set_status(self.storage, row.id, ExperimentStatus.RUNNING)
        self._check_stall(row)

    # -- resuming -------------------------------------------------------------------------

    def _resume(self, row: Experiment, reason: str) -> None:
        restarts = row.restarts
        if row.run_spec is None or len(restarts) >= self.max_restarts:
            given_up = (
                f" (not resumed: {len(restarts)} of {self.max_restarts} restarts used)"
                if row.run_spec is not None
                else ""
            )
            set_status(self.storage, row.id, ExperimentStatus.FAILED, f"{reason}{given_up}")
            return
        assert self.flower is not None
        done = self._complete_rounds(row.id)
        token = new_run_token()
        try:
            spec = RunSpec.model_validate(
                row.run_spec
                | {"start_round": done, "output": HubOutput(hub_url=self.hub_url, run_token=token)}
            )
        except ValueError:  # a damaged row: say so on the experiment, watch the others
            log.critical("ALERT experiment %s: its stored run spec is unreadable", row.id)
            set_status(
                self.storage,
                row.id,
                ExperimentStatus.FAILED,
                f"{reason} (not resumed: its stored run spec is unreadable)",
            )
            return
        try:
            run_id = self.flower.start_run(spec)
        except FlowerUnavailableError as exc:  # the SuperLink is still coming back: next pass
            log.warning("cannot resume %s yet: %s", row.id, exc)
            return
        restart = Restart(
            at=utcnow(), from_round=done, reason=reason[:1000], flower_run_id=row.flower_run_id
        )
        try:
            with self.storage.unit_of_work() as uow:
                current = uow.experiments.get(row.id)
                assert current is not None
                if current.status not in ACTIVE:  # stopped by its researcher meanwhile
                    self._stop(run_id)
                    return
                # The old token dies here: a ServerApp that somehow outlived its run can no
                # longer report into the experiment its continuation now owns.
                current.flower_run_id = str(run_id)
                current.run_token_hash = hash_token(token)
                current.restarts = [*restarts, restart]
                current.rounds_completed = done
        except Exception:
            self._stop(run_id)  # never leave a run the hub does not know about
            raise
        log.warning(
            "experiment %s lost its Flower run %s (%s): resumed from round %d as run %d",
            row.id,
            row.flower_run_id,
            reason,
            done,
            run_id,
        )

    def _complete_rounds(self, experiment_id: str) -> int:
        """The last round n such that rounds 1..n all have a report and a checkpoint.

        Rounds after it were cut off mid-report (a checkpoint without its report): their rows
        go, and the continuation records them again; their objects are overwritten as new
        versions in the versioned bucket.
        """
        with self.storage.unit_of_work() as uow:
            done = 0
            for r in uow.experiments.rounds(experiment_id):
                if r.round == done + 1 and r.report and r.checkpoint_key:
                    done = r.round
                else:
                    uow.experiments.drop_round(r)
            return done

    # -- stalls ---------------------------------------------------------------------------

    def _check_stall(self, row: Experiment) -> None:
        """A run with no round for too long is stopped with a clear reason, never left hanging.

        Flower waits without limit for ``min_available_nodes`` to connect; when a factory dies
        and too few remain, no round ever completes. The limit: three round timeouts plus a
        margin for process start-up, counted from the launch, the last restart or the last
        round (a round is recorded when the next round's replies bring its evaluation, so the
        first record comes after two rounds of training).
        """
        settings = row.settings
        limit = 3 * settings.round_timeout + STALL_MARGIN_SECONDS
        with self.storage.unit_of_work() as uow:
            rounds = uow.experiments.rounds(row.id)
        restarts = [r.at for r in row.restarts]
        last = max([r.created_at for r in rounds] + restarts + [row.started_at or row.created_at])
        idle = (utcnow() - last).total_seconds()
        if idle <= limit:
            return
        if self.flower is not None and row.flower_run_id is not None:
            try:
                self._stop(int(row.flower_run_id))
            except FlowerUnavailableError as exc:
                log.warning("cannot stop stalled run %s: %s", row.id, exc)
        set_status(
            self.storage,
            row.id,
            ExperimentStatus.FAILED,
            f"no round finished for {idle:.0f}s (limit {limit:.0f}s: three round timeouts): "
            f"fewer than {settings.min_factories} factories are reachable",
        )
