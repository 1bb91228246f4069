"""Experiments: the list, the launch form (validated exactly as the API validates), the live
page with per-round charts and per-factory participation, and the stop button."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from fedpark.contracts.messages import describe
from fedpark.contracts.model import ColumnRole
from fedpark.contracts.ref import ContractRef
from fedpark.experiments.protocol import STRATEGY_PARAMS, RoundReport
from fedpark.experiments.protocol.card import gain_rows
from fedpark.experiments.protocol.manifest import factory_gains
from fedpark.experiments.protocol.resources.experiments import ExperimentCreate
from fedpark.hub.api.deps import AuditDep, RuntimeDep
from fedpark.hub.api.paths import ExperimentId
from fedpark.hub.console.charts import Series, line_chart
from fedpark.hub.console.session import ConsolePrincipal, CsrfChecked, require
from fedpark.hub.console.views import render
from fedpark.hub.domain import Page, Principal, Role
from fedpark.hub.errors import DomainError, InvalidInputError, NotFoundError
from fedpark.hub.lifecycle import ACTIVE, ContractStatus
from fedpark.hub.runtime import HubRuntime
from fedpark.hub.storage.models import Experiment, ExperimentRound

router = APIRouter()

# Form fields holding numbers (the API's dotted names); anything else is sent as text.
INTEGERS = frozenset(
    {"model.window", "model.kernel_size", "train.epochs", "train.batch_size", "rounds"}
    | {"min_factories", "seed"}
)
FLOATS = frozenset({"model.dropout", "train.learning_rate", "train.eval_fraction", "round_timeout"})
DEFAULTS: dict[str, Any] = {
    "name": "",
    "model.kind": "mlp",
    "model.task": "classification",
    "model.hidden": "64, 64",
    "model.window": 32,
    "model.kernel_size": 5,
    "model.dropout": 0.1,
    "model.series": "",
    "model.normalization": "pooled",
    "train.epochs": 1,
    "train.batch_size": 64,
    "train.learning_rate": 0.001,
    "train.eval_fraction": 0.2,
    "strategy": "fedavg",
    "strategy_params": "",
    "rounds": 3,
    "min_factories": 2,
    "round_timeout": 600,
    "seed": 0,
    "publish": "last",
}


@router.get("/experiments")
def experiments(request: Request, runtime: RuntimeDep, caller: ConsolePrincipal) -> Response:
    rows = runtime.experiments.visible(caller, Page(limit=200))
    return render(request, "experiments.html", rows=rows)


# -- launching ------------------------------------------------------------------------------


def _number(text: str, kind: type[int] | type[float]) -> int | float | str:
    try:
        return kind(text)
    except ValueError:
        return text  # pydantic then names the field and what it expects


def _body(form: dict[str, Any]) -> dict[str, Any]:
    """The API's JSON body from the form's fields."""
    body: dict[str, Any] = {"model": {}, "train": {}}
    for key, value in form.items():
        if key in ("csrf", "participants", "contract", "strategy_params", "model.hidden"):
            continue
        if key in INTEGERS:
            value = _number(value, int)
        elif key in FLOATS:
            value = _number(value, float)
        if key == "model.series" and not value:
            continue
        section, _, name = key.rpartition(".")
        (body[section] if section else body)[name] = value
    ref = _ref(str(form.get("contract", "")))
    body.update(contract_id=ref.id, contract_version=ref.version)
    body["participants"] = form.get("participants", [])
    hidden = [h.strip() for h in str(form.get("model.hidden", "")).split(",") if h.strip()]
    body["model"]["hidden"] = [_number(h, int) for h in hidden]
    params: dict[str, Any] = {}
    for item in str(form.get("strategy_params", "")).replace(";", ",").split(","):
        if item.strip():
            key, _, value = item.partition("=")
            params[key.strip()] = _number(value.strip(), float)
    body["strategy_params"] = params
    return body


def _errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        field = ".".join(loc[:2]) if loc and loc[0] in ("model", "train") else (loc or [""])[0]
        if field in ("contract_id", "contract_version"):
            field = "contract"
        errors.setdefault(field or "form", describe(error))
    return errors


def _launch_context(
    runtime: HubRuntime, caller: Principal, contract: str, form: dict[str, Any]
) -> dict[str, Any]:
    """The contracts a researcher may pick, and the factories and id columns of the chosen one."""
    approved = runtime.contracts.search(
        caller,
        Page(limit=500),
        status=ContractStatus.APPROVED,
        domain=None,
        owner=None,
        column=None,
        text=None,
    )
    first = ContractRef(approved[0].contract_id, approved[0].version) if approved else None
    choice = contract or (str(first) if first else "")
    factories: list[dict[str, Any]] = []
    id_columns: list[str] = []
    k = None
    chosen = _ref(choice)
    contract_id, version = chosen.id, chosen.version
    if contract_id and version:
        try:
            _, document = runtime.contracts.get(caller, contract_id, version)
            declared = runtime.datasets.list(caller, contract_id, version, Page(limit=500))
        except (NotFoundError, InvalidInputError):
            document, declared = None, []
        if document is not None:
            k = document.policy.min_factories
            id_columns = [c.name for c in document.columns if c.role is ColumnRole.ID]
        by_org: dict[str, dict[str, Any]] = {}
        for d in declared:
            entry = by_org.setdefault(d.org_id, {"org": d.org_id, "rows": 0, "compliant": True})
            entry["rows"] += d.rows
            entry["compliant"] = entry["compliant"] and d.compliant
        factories = sorted(by_org.values(), key=lambda f: f["org"])
    return {
        "approved": approved,
        "contract": choice,
        "factories": factories,
        "id_columns": id_columns,
        "k": k,
        "strategies": sorted(STRATEGY_PARAMS),
        "strategy_params": STRATEGY_PARAMS,
        "form": form,
    }


@router.get("/experiments/new")
def launch_form(
    request: Request,
    runtime: RuntimeDep,
    caller: ConsolePrincipal,
    contract: Annotated[str, Query(max_length=140)] = "",
) -> Response:
    require(caller, Role.RESEARCHER)
    context = _launch_context(runtime, caller, contract, dict(DEFAULTS))
    context["form"]["participants"] = [f["org"] for f in context["factories"] if f["compliant"]]
    if context["k"]:
        context["form"]["min_factories"] = context["k"]
    return render(request, "launch.html", errors={}, **context)


@router.post("/experiments/new", dependencies=[CsrfChecked])
async def launch(
    request: Request, runtime: RuntimeDep, caller: ConsolePrincipal, audit: AuditDep
) -> Response:
    audit.action = "experiment.launch"
    require(caller, Role.RESEARCHER)
    raw = await request.form()
    form: dict[str, Any] = {k: str(v)[:2000] for k, v in raw.items() if k != "participants"}
    form["participants"] = [str(p)[:100] for p in raw.getlist("participants")][:200]
    errors: dict[str, str] = {}
    try:
        body = ExperimentCreate.model_validate(_body(form))
        audit.object = body.contract.audit_object
        row = await run_in_threadpool(runtime.experiments.launch, caller, body)
    except ValidationError as exc:
        errors = _errors(exc)
    except DomainError as exc:
        if exc.status in (401, 404) and exc.field is None:
            raise
        errors = {exc.field or "form": exc.message}
    if errors:
        context = await run_in_threadpool(
            _launch_context, runtime, caller, form.get("contract", ""), form
        )
        return render(request, "launch.html", 422, errors=errors, **context)
    audit.object = f"experiment:{row.id}"
    return RedirectResponse(f"/console/experiments/{row.id}", status_code=303)


def _ref(text: str) -> ContractRef:
    """The form's ``ID@VERSION``; empty parts (the launch check names the field) if it is not."""
    try:
        return ContractRef.parse(text)
    except ValueError:
        return ContractRef("", "")


# -- watching -------------------------------------------------------------------------------


def _cell(org: str, report: RoundReport) -> tuple[str, str]:
    """What ``org`` did in a round, for the participation grid."""
    trained = [f for f in report.train_factories if f.org == org]
    refused = [r for r in report.refused if r.org == org]
    failed = [f for f in report.failures if f.org == org]
    if trained:
        rows = f"{sum(f.examples for f in trained):,}"
        if not report.aggregated:
            rows += " (not aggregated: fewer than k factories)"
        return ("trained", rows)
    if refused:
        return ("refused", refused[0].reason)
    if failed:
        return ("failed", failed[0].reason)
    return ("absent", "—")


def _live(row: Experiment, rounds: list[ExperimentRound]) -> dict[str, Any]:
    """Charts and the participation grid of an experiment's rounds so far."""
    reports = [(r.round, r.report) for r in rounds if r.report is not None]
    train_keys = sorted({k for _, rep in reports for k in rep.train})
    eval_keys = sorted({k for _, rep in reports for k in rep.evaluate})
    total = row.settings.rounds

    def series(section: str, key: str, label: str) -> Series:
        values = [(n, rep.train if section == "train" else rep.evaluate) for n, rep in reports]
        return Series(label, [(n, float(metrics[key])) for n, metrics in values if key in metrics])

    losses = [series("train", k, k.replace("_", " ")) for k in train_keys if "loss" in k]
    losses += [series("evaluate", k, f"evaluation {k}") for k in eval_keys if "loss" in k]
    metrics = [series("evaluate", k, k) for k in eval_keys if "loss" not in k]
    charts = [
        line_chart("Loss per round", losses, x_max=total),
        line_chart("Evaluation metrics per round", metrics, x_max=total),
    ]
    orgs = sorted(
        {f.org for _, rep in reports for f in rep.train_factories}
        | {r.org for _, rep in reports for r in rep.refused}
        | set(row.participants)
    )
    grid = [(org, [_cell(org, rep) for _, rep in reports]) for org in orgs]
    gains = gain_rows(factory_gains([rep for _, rep in reports]), row.settings.model.task)
    return {
        "gains": gains,
        "charts": charts,
        "reports": reports,
        "train_keys": train_keys,
        "eval_keys": eval_keys,
        "grid": grid,
        "active": row.status in ACTIVE,
    }


def _watch(runtime: HubRuntime, caller: Principal, experiment_id: str) -> dict[str, Any]:
    row = runtime.experiments.get(caller, experiment_id)
    rounds = runtime.experiments.rounds(caller, experiment_id)
    may_stop = caller.role is Role.RESEARCHER and caller.org_id == row.org_id
    settings = row.settings.model_dump(mode="json")
    return {"row": row, "settings": settings, "may_stop": may_stop} | _live(row, rounds)


@router.get("/experiments/{experiment_id}")
def experiment_page(
    request: Request, experiment_id: ExperimentId, runtime: RuntimeDep, caller: ConsolePrincipal
) -> Response:
    return render(request, "experiment.html", **_watch(runtime, caller, experiment_id))


@router.get("/experiments/{experiment_id}/live")
def experiment_live(
    request: Request, experiment_id: ExperimentId, runtime: RuntimeDep, caller: ConsolePrincipal
) -> Response:
    """The part of the experiment page that the browser refreshes while the run is active."""
    return render(request, "experiment_live.html", **_watch(runtime, caller, experiment_id))


@router.post("/experiments/{experiment_id}/stop", dependencies=[CsrfChecked])
def stop(
    experiment_id: ExperimentId, runtime: RuntimeDep, caller: ConsolePrincipal, audit: AuditDep
) -> Response:
    audit.action, audit.object = "experiment.stop", f"experiment:{experiment_id}"
    runtime.experiments.stop(caller, experiment_id)
    return RedirectResponse(f"/console/experiments/{experiment_id}", status_code=303)
