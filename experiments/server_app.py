"""FedPark's Flower ServerApp: one of Flower's strategies, with per-round reporting.

Flower runs the federation (SuperLink, SuperNodes, message passing, aggregation); this app
only chooses the strategy and model from the run's spec and records what each round did.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from fedpark.contracts import Contract
from fedpark.experiments import prompt_pulls
from fedpark.experiments.contract_strategy import ContractStrategy
from fedpark.experiments.features import plan_from_contract
from fedpark.experiments.grid import PromptGrid, SuperLinkLostError
from fedpark.experiments.models import ModelSpec, initial_model
from fedpark.experiments.protocol import SPEC_KEY, HubOutput, RunSpec
from fedpark.experiments.protocol.package import ModelPackage
from fedpark.experiments.protocol.reports import LOCAL_BASELINE
from fedpark.experiments.protocol.resources.experiments import RunFinishCreate
from fedpark.experiments.reporting import (
    BackgroundRounds,
    DirectoryReporter,
    HubReporter,
    Reporter,
    RunError,
)
from fedpark.experiments.strategies import build_strategy
from fedpark.experiments.weights import (
    from_safetensors,
    to_safetensors,
    weights_sha256,
)

log = logging.getLogger(__name__)

app = ServerApp()


def reporter_for(spec: RunSpec) -> Reporter:
    if isinstance(spec.output, HubOutput):
        hub = HubReporter(spec.output.hub_url, spec.output.run_token, spec.experiment_id)
        return BackgroundRounds(hub)  # a round's report travels while the next one trains
    return DirectoryReporter(Path(spec.output.directory))


@app.main()
def main(grid: Grid, context: Context) -> None:
    from flwr.superlink.grid import http_grid

    prompt_pulls.quicken(http_grid)  # a reply's objects may still be on their way
    spec = RunSpec.model_validate_json(str(context.run_config[SPEC_KEY]))
    reporter = reporter_for(spec)
    try:
        run(PromptGrid(grid), spec, reporter)
    except SuperLinkLostError:  # the SuperLink went away under the app: a loss the hub resumes
        log.warning("the ServerApp lost its SuperLink; the hub resumes the run", exc_info=True)
        raise
    except RunError as exc:  # FedPark's own verdict, in its own words
        reporter.failed(str(exc))
        raise
    except Exception as exc:  # the text stays in the run's log: it may quote anything
        log.exception("the run failed")
        reporter.failed(f"the ServerApp failed ({type(exc).__name__}); see the run's log")
        raise
    # Losing the SuperLink ends the app with Flower's BaseExceptions (RunNotRunningException,
    # an interrupt) or SuperLinkLostError, and no report: the hub sees the run failed while the
    # experiment is still open, and resumes it from the last checkpoint.


def run(grid: Grid, spec: RunSpec, reporter: Reporter) -> None:
    """Train ``spec`` on the grid and report every round and the final model."""
    started = time.time()
    contract = Contract.model_validate(spec.contract)
    model_spec = ModelSpec.of(spec.model)
    plan = plan_from_contract(contract, model_spec.task, spec.model.series)
    norm = spec.normalization
    model = initial_model(spec, plan)
    if spec.start_round:
        resume_from(model, reporter, spec.start_round)
    k = max(spec.min_factories, contract.policy.min_factories)
    strategy = ContractStrategy(
        build_strategy(spec.strategy, spec.strategy_params, min_factories=k),
        reporter,
        min_factories=k,
        columns={c.name for c in contract.columns},
        rounds_below_k=spec.rounds_below_k,
        offset=spec.start_round,
    )
    final = ArrayRecord(model.state_dict())
    if spec.rounds > spec.start_round:  # else the lost run had trained every round already
        result = strategy.start(
            grid=grid,
            initial_arrays=final,
            num_rounds=spec.rounds - spec.start_round,
            timeout=spec.round_timeout,
            train_config=ConfigRecord({"seed": spec.seed}),
            # only the last round sends evaluation messages (see ContractStrategy)
            evaluate_config=ConfigRecord({LOCAL_BASELINE: spec.local_baseline}),
            evaluate_fn=strategy.end_of_round,
        )
        final = result.arrays
    if len(final) == 0:  # no round aggregated: every factory refused or failed
        reasons = [r.reason for report in strategy.history for r in report.refused]
        raise RunError(f"no round could be aggregated ({'; '.join(reasons) or 'no replies'})")
    weights = to_safetensors(final.to_torch_state_dict(), {"experiment": spec.experiment_id})
    label_unit = next((c.unit for c in contract.columns if c.name == plan.label), None)
    package = ModelPackage(
        architecture=spec.model,
        features=plan.described(norm, label_unit),
        contract=spec.contract,
    )
    summary = {
        "experiment": spec.experiment_id,
        "contract_id": contract.id,
        "contract_version": contract.version,
        "contract_sha256": spec.contract_sha256,
        "weights_sha256": weights_sha256(weights),
        "rounds_completed": spec.start_round + len(strategy.history),
        "resumed_from_round": spec.start_round,
        "started": started,
        "ended": time.time(),
    }
    reporter.finished(weights, RunFinishCreate(summary=summary, package=package))


def resume_from(model: torch.nn.Module, reporter: Reporter, number: int) -> None:
    """Load round ``number``'s recorded weights into ``model``.

    Loaded strictly: a checkpoint whose names or shapes differ from the spec's model is an
    error here, not a silent partial start. Server-side optimizer state (FedAdam's moments,
    FedAvgM's momentum) is not in a checkpoint and starts again from zero.
    """
    state = from_safetensors(reporter.checkpoint(number))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        raise RunError(f"round {number}'s checkpoint does not fit the model") from None
    log.info("resumed from round %d's checkpoint", number)
