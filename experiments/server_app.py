"""FedPark's Flower ServerApp: one of Flower's strategies, with per-round reporting.

Flower runs the federation (SuperLink, SuperNodes, message passing, aggregation); this app
only chooses the strategy and model from the run's spec and records what each round did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Strategy

from fedpark.contracts import Contract
from fedpark.experiments.features import plan_from_contract
from fedpark.experiments.models import build_model
from fedpark.experiments.reporting import (
    DirectoryReporter,
    HubReporter,
    Reporter,
    RoundReport,
    factory_results,
)
from fedpark.experiments.run_spec import REFUSED, SPEC_KEY, HubOutput, RunSpec
from fedpark.experiments.strategies import build_strategy
from fedpark.experiments.weights import (
    from_safetensors,
    numpy_to_safetensors,
    to_safetensors,
    weights_sha256,
)

log = logging.getLogger(__name__)

app = ServerApp()


class RoundRecorder:
    """Watches a strategy's replies so each round's report names every factory."""

    def __init__(
        self, strategy: Strategy, reporter: Reporter, state_keys: list[str], offset: int = 0
    ) -> None:
        self.reporter = reporter
        self.state_keys = state_keys
        self.offset = offset  # rounds done before this run (a resumed run counts on from them)
        self.current = RoundReport(round=offset + 1)
        self.history: list[RoundReport] = []
        train, evaluate = strategy.aggregate_train, strategy.aggregate_evaluate

        def aggregate_train(server_round: int, replies: Iterable[Message]) -> Any:
            replies = list(replies)
            self.current = RoundReport(round=offset + server_round)
            done, refused, failures = factory_results(replies)
            self.current.train_factories, self.current.refused = done, refused
            self.current.failures += failures
            arrays, metrics = train(server_round, without_refusals(replies))
            self.current.train = _floats(metrics)
            return arrays, metrics

        def aggregate_evaluate(server_round: int, replies: Iterable[Message]) -> Any:
            replies = list(replies)
            done, refused, failures = factory_results(replies)
            self.current.evaluate_factories = done
            self.current.failures += failures
            known = {r["org"] for r in self.current.refused}
            self.current.refused += [r for r in refused if r["org"] not in known]
            metrics = evaluate(server_round, without_refusals(replies))
            self.current.evaluate = _floats(metrics)
            return metrics

        # Instance attributes shadow the methods: Flower's own code stays untouched.
        strategy.aggregate_train = aggregate_train  # type: ignore[method-assign]
        strategy.aggregate_evaluate = aggregate_evaluate  # type: ignore[method-assign]

    def end_of_round(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """Flower's ``evaluate_fn`` hook: called with the new global weights after a round."""
        if server_round == 0:
            return None
        report = self.current
        report.round = self.offset + server_round
        checkpoint = numpy_to_safetensors({k: v.numpy() for k, v in arrays.items()})
        self.reporter.round(report, checkpoint)
        self.history.append(report)
        return None


def without_refusals(replies: list[Message]) -> list[Message]:
    """Replies minus the factories that refused the contract: they are not participants.

    Flower's strategies skip error replies anyway, but its DP wrappers refuse to aggregate a
    round with any error in it; a factory whose data breaks the contract must not be able to
    stop everyone else's round.
    """
    return [
        r for r in replies if not (r.has_error() and (r.error.reason or "").startswith(REFUSED))
    ]


def _floats(metrics: MetricRecord | None) -> dict[str, float]:
    return {k: float(v) for k, v in (metrics or {}).items()}  # type: ignore[arg-type]


def reporter_for(spec: RunSpec) -> Reporter:
    if isinstance(spec.output, HubOutput):
        return HubReporter(spec.output.hub_url, spec.output.run_token, spec.experiment_id)
    return DirectoryReporter(Path(spec.output.directory))


@app.main()
def main(grid: Grid, context: Context) -> None:
    spec = RunSpec.model_validate_json(str(context.run_config[SPEC_KEY]))
    reporter = reporter_for(spec)
    try:
        run(grid, spec, reporter)
    except Exception as exc:  # FedPark's own failure: the experiment ends with this reason
        reporter.failed(f"{type(exc).__name__}: {exc}")
        raise
    # Losing the SuperLink ends the app with Flower's BaseExceptions (RunNotRunningException,
    # an interrupt) and no report: the hub sees the run failed while the experiment is still
    # open, and resumes it from the last checkpoint.


def run(grid: Grid, spec: RunSpec, reporter: Reporter) -> None:
    """Train ``spec`` on the grid and report every round and the final model."""
    started = time.time()
    contract = Contract.model_validate(spec.contract)
    model_spec = spec.model.spec()
    plan = plan_from_contract(contract, model_spec.task, spec.model.series)
    torch.manual_seed(spec.seed)
    norm = spec.normalization
    target = (
        (norm.mean[plan.label], norm.std[plan.label])
        if model_spec.task == "regression" and plan.label in norm.mean
        else None
    )
    model = build_model(
        model_spec, plan.n_features, len(plan.classes) if plan.classes else None, target
    )
    if spec.start_round:
        resume_from(model, reporter, spec.start_round)
    strategy = build_strategy(spec.strategy, spec.strategy_params, min_factories=spec.min_factories)
    recorder = RoundRecorder(strategy, reporter, list(model.state_dict()), spec.start_round)
    final = ArrayRecord(model.state_dict())
    if spec.rounds > spec.start_round:  # else the lost run had trained every round already
        result = strategy.start(
            grid=grid,
            initial_arrays=final,
            num_rounds=spec.rounds - spec.start_round,
            timeout=spec.round_timeout,
            train_config=ConfigRecord({"seed": spec.seed}),
            evaluate_fn=recorder.end_of_round,
        )
        final = result.arrays
    if len(final) == 0:  # no round aggregated: every factory refused or failed
        reasons = [r["reason"] for report in recorder.history for r in report.refused]
        raise RuntimeError(f"no round could be aggregated ({'; '.join(reasons) or 'no replies'})")
    weights = to_safetensors(final.to_torch_state_dict(), {"experiment": spec.experiment_id})
    reporter.finished(
        weights,
        {
            "experiment": spec.experiment_id,
            "contract_id": contract.id,
            "contract_version": contract.version,
            "contract_sha256": spec.contract_sha256,
            "weights_sha256": weights_sha256(weights),
            "rounds_completed": spec.start_round + len(recorder.history),
            "resumed_from_round": spec.start_round,
            "started": started,
            "ended": time.time(),
        },
    )


def resume_from(model: torch.nn.Module, reporter: Reporter, number: int) -> None:
    """Load round ``number``'s recorded weights into ``model``.

    Loaded strictly: a checkpoint whose names or shapes differ from the spec's model is an
    error here, not a silent partial start. Server-side optimizer state (FedAdam's moments,
    FedAvgM's momentum) is not in a checkpoint and starts again from zero.
    """
    state = from_safetensors(reporter.checkpoint(number))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise RuntimeError(f"round {number}'s checkpoint does not fit the model: {exc}") from None
    log.info("resumed from round %d's checkpoint", number)
