"""FedPark's Flower ClientApp: trains only on local data that meets the approved contract.

Runs at the factory inside ``flower-supernode``. Before training it checks that the run's
contract is the one the hub approved (the hub's Ed25519 signature, verified with the key the
factory pinned) and validates the local file against it; a file that breaks the contract is
refused with rule counts only. Nothing but model weights and aggregate metrics is sent back;
a refusal or a failure is a typed ``FactoryProblem`` (kinds, rule names, counts), never the
text of an exception (see ``contained_errors_mod``).

Node config (``flower-supernode --node-config``): the protocol's
:class:`~fedpark.experiments.protocol.node.NodeConfig`, which ``fedpark factory join`` writes:

- ``data-path``: the local Parquet, Arrow IPC/Feather or CSV file;
- ``hub-url``, ``token-file`` and ``hub-key``: the hub, a file holding the factory's API token,
  and the hub's public key pinned when the factory joined; the contract and its signature are
  fetched from the hub and cached; or, without a hub, ``contract-dir`` holding
  ``contract.json``, ``signature.json`` and ``hub-key.pem`` as written by
  ``fedpark contract download``;
- ``org``: the factory's organization id (reported with its results);
- ``work-dir`` (optional): where validation results are cached (default: beside the data).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod
from flwr.clientapp.typing import ClientAppCallable
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM
from torch import nn

from fedpark.contracts import Contract, DataError, contract_sha256, validate_file
from fedpark.contracts.dialect import CsvOptions
from fedpark.contracts.errors import ReadFailure
from fedpark.contracts.reader import open_source
from fedpark.contracts.ref import ContractRef
from fedpark.contracts.report import DataProfile
from fedpark.experiments.approved import (
    ContractNotVerifiedError,
    ContractUnavailableError,
    fetch_verified,
    verified_contract,
)
from fedpark.experiments.control_variates import finish, from_message
from fedpark.experiments.features import (
    FeaturePlan,
    model_arrays,
    normalization_for,
    plan_from_contract,
    recent_split,
)
from fedpark.experiments.models import ModelSpec, build_model, initial_model
from fedpark.experiments.protocol import (
    ALONE_PREFIX,
    EVALUATE_FIRST,
    EVALUATION_RECORD,
    FAILURE_CODE,
    LOCAL_BASELINE,
    REFUSAL_CODE,
    SCAFFOLD_CLIENT,
    SPEC_KEY,
    FactoryProblem,
    ProblemKind,
    RunSpec,
)
from fedpark.experiments.protocol.client import HubClient
from fedpark.experiments.protocol.errors import HubError
from fedpark.experiments.protocol.node import (
    ALONE_MODEL,
    EVENTS_FILE,
    EventKind,
    FactoryEvent,
    NodeConfig,
)
from fedpark.experiments.training import TrainConfig, evaluate, train
from fedpark.experiments.weights import to_safetensors

log = logging.getLogger(__name__)


class RefusedError(Exception):
    """The factory will not train: its data or the run's contract is not acceptable."""

    def __init__(self, kind: ProblemKind, **fields: Any) -> None:
        self.kind, self.fields = kind, fields
        super().__init__(kind.value)

    def problem(self, org: str) -> FactoryProblem:
        return FactoryProblem(org=org, kind=self.kind, **self.fields)


@dataclass
class LocalData:
    spec: RunSpec
    plan: FeaturePlan
    org: str
    train_x: np.ndarray
    train_y: np.ndarray
    eval_x: np.ndarray
    eval_y: np.ndarray


def _contract(config: NodeConfig, spec: RunSpec) -> Contract:
    """The run's contract as this factory holds it: from ``contract-dir``, or fetched once
    from the hub; either way verified with the hub key the factory pinned."""
    try:
        if config.contract_dir is not None:
            return verified_contract(config.contract_dir)
        if config.hub_url is None or config.token_file is None or config.hub_key is None:
            raise ContractUnavailableError()  # never the token to a default address
        token = config.token_file.read_text().strip()
        with HubClient(config.hub_url, token) as api:
            ref = ContractRef(str(spec.contract["id"]), str(spec.contract["version"]))
            return fetch_verified(api, ref, config.work_folder, config.hub_key)
    except ContractNotVerifiedError:
        raise RefusedError(ProblemKind.CONTRACT_NOT_VERIFIED) from None
    except ContractUnavailableError as exc:
        raise RefusedError(ProblemKind.CONTRACT_UNAVAILABLE, status=exc.status) from None
    except (OSError, HubError):  # no token file, or a token that is not one
        raise RefusedError(ProblemKind.CONTRACT_UNAVAILABLE) from None


def _validated(
    contract: Contract, data: Path, work_dir: Path, csv: CsvOptions | None = None
) -> DataProfile:
    """Validate, or reuse the result for an unchanged file, the same contract and the same
    forced CSV dialect; the file's profile (it stays here: a factory-scope model standardizes
    with it)."""
    stat = data.stat()
    key = f"{data.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{contract_sha256(contract)}"
    if csv is not None and csv.forced:
        key += f"|{sorted(csv.names().items())}"
    cache = work_dir / f"validation-v3-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
    if cache.exists():
        verdict = json.loads(cache.read_text())
    else:
        try:
            result = validate_file(contract, data, csv_options=csv)
        except DataError as exc:
            verdict = {"read": exc.failure.model_dump(mode="json", exclude_none=True)}
        else:
            report = result.report
            verdict = {
                "rules": {} if report.passed else report.rule_counts() or {"failed": 1},
                "profile": result.profile.model_dump(mode="json"),
            }
        work_dir.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(verdict))
    if "read" in verdict:
        read = ReadFailure.model_validate(verdict["read"])
        raise RefusedError(ProblemKind.DATA_UNREADABLE, read=read)
    if verdict["rules"]:
        raise RefusedError(ProblemKind.DATA_BREAKS_CONTRACT, rules=verdict["rules"])
    return DataProfile.model_validate(verdict["profile"])


def _load(msg: Message, context: Context) -> LocalData:
    spec = RunSpec.model_validate_json(str(context.run_config[SPEC_KEY]))
    config = NodeConfig.of(context.node_config)
    org = config.org
    if spec.participants and org not in spec.participants:
        raise RefusedError(ProblemKind.NOT_INVITED)  # before the data is even opened
    data = config.data_path
    contract = _contract(config, spec)
    if contract_sha256(contract) != spec.contract_sha256:
        raise RefusedError(ProblemKind.CONTRACT_MISMATCH)
    profile = _validated(contract, data, config.work_folder, config.csv_options)
    plan = plan_from_contract(contract, spec.model.task, spec.model.series)
    types = {c.name: c.arrow_type for c in contract.columns}
    source = open_source(data, csv_types=types, csv_options=config.csv_options)
    table = pa.Table.from_batches(list(source.batches(plan.columns, 1 << 16)))
    norm = normalization_for(spec.model.normalization, spec.normalization, profile, plan)
    window = spec.model.window if spec.model.kind == "tcnn" else None
    x, y, series = model_arrays(table, plan, norm, window)
    (train_x, train_y), (eval_x, eval_y) = recent_split(x, y, spec.train.eval_fraction, series)
    return LocalData(spec, plan, org, train_x, train_y, eval_x, eval_y)


def _org(context: Context) -> str:
    return str(context.node_config.get("org", "unknown"))


def _note(context: Context, msg: Message, event: EventKind, **fields: Any) -> None:
    """Tell the factory's own operator (``fedpark factory join`` prints these): a
    :class:`FactoryEvent` line in the work dir's events file. It stays at the factory."""
    line = FactoryEvent(run=msg.metadata.run_id, event=event, **fields)
    try:
        folder = NodeConfig.of(context.node_config).work_folder
    except ValueError:
        return  # a node config without a data path: nowhere to write, and the reply says so
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / EVENTS_FILE).open("a") as fh:
            fh.write(line.model_dump_json(exclude_none=True) + "\n")
    except OSError:
        log.warning("cannot write to %s", folder / EVENTS_FILE)


def _reply_problem(msg: Message, context: Context, problem: FactoryProblem) -> Message:
    code = REFUSAL_CODE if problem.refused else FAILURE_CODE
    event = EventKind.REFUSED if problem.refused else EventKind.FAILED
    if problem.kind is ProblemKind.NOT_INVITED:
        event = EventKind.SKIPPED
    _note(context, msg, event, reason=problem.describe())
    return Message(Error(code, problem.model_dump_json(exclude_none=True)), reply_to=msg)


def contained_errors_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Every reply that leaves is FedPark's own words: refusals and failures become a typed
    :class:`FactoryProblem`.

    Flower puts the text of a ClientApp's exception into its error reply, and exceptions
    quote their input (Arrow quotes the offending CSV row); here no exception escapes. Its
    full text and traceback go to the factory's own log only.
    """
    try:
        return call_next(msg, context)
    except RefusedError as exc:
        return _reply_problem(msg, context, exc.problem(_org(context)))
    except Exception as exc:
        log.exception("FedPark's client failed on %s", msg.metadata.message_type)
        problem = FactoryProblem(
            org=_org(context), kind=ProblemKind.FACTORY_ERROR, error=type(exc).__name__
        )
        return _reply_problem(msg, context, problem)


app = ClientApp(mods=[contained_errors_mod])


def _model(local: LocalData, arrays: ArrayRecord) -> nn.Module:
    classes = len(local.plan.classes) if local.plan.classes else None
    model = build_model(ModelSpec.of(local.spec.model), local.plan.n_features, classes)
    model.load_state_dict(arrays.to_torch_state_dict())
    return model


def dp_clipping_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Flower's client-side fixed clipping, for runs whose strategy asks for it.

    ``DifferentialPrivacyClientSideFixedClipping`` sends a clipping norm with each training
    message; Flower's ``fixedclipping_mod`` then clips this factory's update before it leaves.
    Runs without DP send no norm and pass straight through.
    """
    config = msg.content.config_records
    if any(KEY_CLIPPING_NORM in record for record in config.values()):
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


@app.train(mods=[dp_clipping_mod])
def train_fn(msg: Message, context: Context) -> Message:
    local = _load(msg, context)
    model = _model(local, msg.content["arrays"])  # type: ignore[arg-type]
    config = msg.content["config"] if "config" in msg.content else ConfigRecord()
    # The model this message carries is the last round's aggregate: evaluated here, before
    # training changes it, it saves that round a message of its own (see EVALUATE_FIRST).
    evaluation = _evaluation(local, model) if config.get(EVALUATE_FIRST) is True else None
    settings = local.spec.train
    control = from_message(msg.content, model, context.state)
    loss = train(
        model,
        local.train_x,
        local.train_y,
        local.spec.model.task,
        TrainConfig(
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            proximal_mu=float(config.get("proximal-mu", 0.0)),  # type: ignore[arg-type]
            # the run's seed, moved on each round (the same draws every round would not be)
            seed=int(config.get("seed", 0)) + int(config.get("server-round", 0)),  # type: ignore[arg-type]
        ),
        on_gradients=control,
    )
    server_round = int(config.get("server-round", 0))  # type: ignore[arg-type]
    _note(context, msg, EventKind.TRAINED, rows=len(local.train_x), round=server_round)
    content = RecordDict(
        {
            "arrays": ArrayRecord(model.state_dict()),
            "metrics": MetricRecord({"train_loss": loss, "num-examples": len(local.train_x)}),
            "fedpark": ConfigRecord({"org": local.org}),
        }
    )
    if evaluation is not None:
        content[EVALUATION_RECORD] = ConfigRecord(evaluation)  # type: ignore[arg-type]
    if control is not None:
        content[SCAFFOLD_CLIENT] = finish(control, context.state)
    return Message(content=content, reply_to=msg)


def _evaluation(local: LocalData, model: nn.Module) -> dict[str, float | int]:
    """Metrics of ``model`` on the local evaluation rows, and how many rows there were."""
    classes = len(local.plan.classes) if local.plan.classes else None
    metrics: dict[str, float | int] = dict(
        evaluate(model, local.eval_x, local.eval_y, local.spec.model.task, classes)
    )
    metrics["num-examples"] = len(local.eval_x)
    return metrics


def _alone(local: LocalData, keep: Path | None = None) -> dict[str, float]:
    """Held-out metrics of a model trained on this factory's rows alone, from the run's own
    initial weights with the budget the factory spent in the federation (every round's
    epochs): the baseline of what joining gained it. Only these numbers leave; the model
    itself stays at the factory, in ``keep`` (safetensors) when given: the factory's own
    model, to compare the federated one with on its line.

    It must answer within the round's timeout: past half of it no further epoch starts (a
    long run's whole budget in one message could exceed it), and ``alone_epochs`` says how
    many ran."""
    spec = local.spec
    deadline = time.monotonic() + spec.round_timeout / 2
    model = initial_model(spec, local.plan)
    config = TrainConfig(
        epochs=spec.rounds * spec.train.epochs,
        batch_size=spec.train.batch_size,
        learning_rate=spec.train.learning_rate,
        seed=spec.seed,
    )
    done = [0]
    train(model, local.train_x, local.train_y, spec.model.task, config, deadline, done.append)
    if keep is not None:  # best effort: a full disk must not cost the round its metrics
        try:
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_bytes(to_safetensors(model.state_dict()))
        except OSError:
            log.warning("cannot keep the alone model in %s", keep.parent)
    metrics = _evaluation(local, model)
    alone = {f"{ALONE_PREFIX}{k}": float(v) for k, v in metrics.items() if k != "num-examples"}
    return alone | {f"{ALONE_PREFIX}epochs": float(done[-1])}


@app.evaluate()
def evaluate_fn(msg: Message, context: Context) -> Message:
    local = _load(msg, context)
    model = _model(local, msg.content["arrays"])  # type: ignore[arg-type]
    metrics = _evaluation(local, model)
    config = msg.content["config"] if "config" in msg.content else ConfigRecord()
    if config.get(LOCAL_BASELINE) is True and len(local.train_x):
        work = NodeConfig.of(context.node_config).work_folder
        metrics.update(_alone(local, work / ALONE_MODEL.format(run=msg.metadata.run_id)))
    content = RecordDict(
        {
            "metrics": MetricRecord(metrics),  # type: ignore[arg-type]
            "fedpark": ConfigRecord({"org": local.org}),
        }
    )
    return Message(content=content, reply_to=msg)
