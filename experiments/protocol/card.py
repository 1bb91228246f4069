"""A model card from the signed manifest: what the model is for, what it learned from, how
well it does (per round, per factory, against each factory alone), its limits, and how to
run it. Built from the manifest only, so the hub's console and ``fedpark model show`` say
the same thing."""

from __future__ import annotations

from dataclasses import dataclass, field

from fedpark.experiments.protocol.manifest import (
    GAIN_METRICS,
    FactoryGain,
    ModelManifest,
    PublishedRound,
)
from fedpark.experiments.protocol.package import ModelPackage


@dataclass
class ModelCard:
    title: str
    intended_use: list[str]
    data: list[str]
    rounds: list[tuple[int, int, int, dict[str, float]]]  # round, factories, rows, metrics
    factories: list[tuple[str, int, dict[str, float]]]  # org, held-out rows, metrics
    gains: list[tuple[str, str, float, float, float]]  # org, metric, alone, federated, gain
    limits: list[str] = field(default_factory=list)
    usage: list[str] = field(default_factory=list)


def model_card(
    manifest: ModelManifest, folder: str = "MODEL_DIR", package: ModelPackage | None = None
) -> ModelCard:
    """The card of the model ``manifest`` seals; ``package``: the one the folder runs with,
    when it is not the manifest's (a fine-tuned folder keeps its plant's statistics)."""
    package = package or manifest.package
    contract = package.contract
    features = package.features
    policy = contract.get("policy") or {}
    purposes = policy.get("purposes") or []
    task = package.task
    what = (
        f"predicts {features.label} ({', '.join(str(c) for c in features.classes or [])})"
        if task == "classification"
        else f"predicts {features.label} in {features.label_unit or 'its unit'}"
    )
    window = package.window
    intended = [
        f"{contract.get('title', manifest.contract.id)}: {what} from "
        f"{len(features.inputs)} feature columns"
        + (f", over windows of {window} rows per {features.series or 'file'}" if window else ""),
        f"purposes the contract allows: {', '.join(purposes) or 'not stated'}",
    ]
    aggregated = [r for r in manifest.rounds if r.aggregated]
    rows_per_round = [sum(r.examples.values()) for r in aggregated]
    data = [
        f"contract {manifest.contract.id} {manifest.contract.version} "
        f"(sha256 {manifest.contract.sha256[:12]}…)",
        f"{len(manifest.participants)} factories contributed: {', '.join(manifest.participants)}"
        f" (k = {manifest.min_factories})",
        f"{len(aggregated)} aggregated rounds"
        + (
            f", {min(rows_per_round)}-{max(rows_per_round)} rows per round"
            if rows_per_round
            else ""
        ),
    ]
    if manifest.published is not None:
        data.append(_published(manifest.published))
    # per factory: the last evaluation's figures, which the gain table carries
    factories = [
        (g.org, g.examples, _pick(g.federated, GAIN_METRICS[task])) for g in manifest.gains
    ]
    gains = gain_rows(manifest.gains, task)
    limits = _limits(manifest, package)
    # A factory-normalized model runs with the plant's own statistics (a file of its history).
    ref = " --reference HISTORY" if package.needs_reference else ""
    usage = [
        f"fedpark model predict {folder} DATA{ref} -o predictions.parquet",
        f"fedpark model export-onnx {folder}{ref} -o model.onnx",
        f"fedpark model finetune {folder} DATA -o local-model/",
    ]
    return ModelCard(
        title=f"{manifest.experiment.name} ({manifest.experiment.id})",
        intended_use=intended,
        data=data,
        rounds=[
            (r.round, len(r.contributors), sum(r.examples.values()), r.evaluate)
            for r in manifest.rounds
        ],
        factories=factories,
        gains=gains,
        limits=limits,
        usage=usage,
    )


def gain_rows(gains: list[FactoryGain], task: str) -> list[tuple[str, str, float, float, float]]:
    """(factory, metric, alone, federated, gain) for the task's headline metrics; the gain is
    positive when the federated model is better (lower, for an error like RMSE)."""
    sign = -1.0 if task == "regression" else 1.0
    return [
        (g.org, name, g.alone[name], g.federated[name], sign * (g.federated[name] - g.alone[name]))
        for g in gains
        for name in GAIN_METRICS[task]
        if name in g.alone and name in g.federated
    ]


def _published(published: PublishedRound) -> str:
    which = (
        "the last aggregated round"
        if published.rule == "last"
        else f"the best round by held-out {published.metric}"
    )
    figure = "" if published.value is None else f", {published.metric} {published.value:.4f}"
    return f"weights of round {published.round} ({which}{figure})"


def _pick(metrics: dict[str, float], names: tuple[str, ...]) -> dict[str, float]:
    return {n: metrics[n] for n in names if n in metrics}


def _limits(manifest: ModelManifest, package: ModelPackage) -> list[str]:
    limits = []
    warning = manifest.published.warning() if manifest.published else None
    if warning:
        limits.append(warning)
    if manifest.unseen_classes:
        names = ", ".join(str(c) for c in manifest.unseen_classes)
        limits.append(
            f"no contributing factory declared at least k rows of {package.features.label} "
            f"{names}: the model has not learned to recognize them"
        )
    if package.needs_reference:
        limits.append(
            "trained on each factory's readings standardized with its own statistics: run it "
            "with the running plant's (--reference: a file of its history, e.g. the one it "
            "trained on); a fine-tuned copy keeps them"
        )
    elif package.features.reference:
        limits.append(
            "standardizes readings with one plant's statistics (from "
            f"{package.features.reference}): it is that plant's model"
        )
    if package.window:
        limits.append(
            f"a prediction needs the {package.window - 1} rows before it in the same "
            f"{package.features.series or 'file'}: the first rows of each get none"
        )
    if manifest.invited != manifest.participants:
        missing = sorted(set(manifest.invited) - set(manifest.participants))
        if missing:
            limits.append(f"invited but not in the model: {', '.join(missing)}")
    worse = [g.org for g in manifest.gains if _worse(g.alone, g.federated, package.task)]
    if worse:
        limits.append(
            f"on their own held-out rows a local-only model did better for {', '.join(worse)}:"
            " fine-tune there (fedpark model finetune)"
        )
    limits.append(
        "measured on each factory's most recent rows: conditions no factory had (new faults, "
        "new operating modes) are not covered"
    )
    return limits


def _worse(alone: dict[str, float], federated: dict[str, float], task: str) -> bool:
    name = GAIN_METRICS[task][0]
    if name not in alone or name not in federated:
        return False
    lower_is_better = task == "regression"
    return federated[name] > alone[name] if lower_is_better else federated[name] < alone[name]
