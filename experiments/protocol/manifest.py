"""A trained model's provenance manifest: built and signed by the hub, verified by anyone.

The manifest says which contract version, which factories (those whose updates are in the
model, and those only invited), which rounds with which metrics, and which weights. The hub
signs a statement naming the manifest's and the weights' sha256 (a ``fedpark-signature/v1``
document, see :mod:`fedpark.contracts.signing`); :func:`verify_model` checks both against the
hub's pinned public key.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field

from fedpark.contracts.errors import SignatureError
from fedpark.contracts.ref import ContractRef
from fedpark.contracts.signing import canonical, sign_document, verify_document
from fedpark.experiments.protocol.base import Wire
from fedpark.experiments.protocol.package import LabelValue, ModelPackage
from fedpark.experiments.protocol.plan import ModelSettings, PublishRule, TrainSettings
from fedpark.experiments.protocol.reports import ALONE_PREFIX, RoundReport

SIGNATURE_KIND = "model-manifest"


class ManifestExperiment(Wire):
    id: str
    name: str
    launched_by: str
    organization: str


class ManifestContract(Wire):
    id: str
    version: str
    sha256: str

    @property
    def ref(self) -> ContractRef:
        return ContractRef(self.id, self.version)


class ManifestRound(Wire):
    round: int
    aggregated: bool
    contributors: list[str]
    examples: dict[str, int] = Field(description="Rows each contributor trained on")
    train: dict[str, float]
    evaluate: dict[str, float]
    refused: list[str]
    failed: list[str]

    @classmethod
    def of(cls, report: RoundReport) -> ManifestRound:
        return cls(
            round=report.round,
            aggregated=report.aggregated,
            contributors=report.contributors,
            examples={
                f.org: f.examples for f in report.train_factories if f.org in report.contributors
            },
            train=report.train,
            evaluate=report.evaluate,
            refused=[f.org for f in report.refused],
            failed=sorted({f.org or f"node {f.node_id}" for f in report.failures}),
        )


class ManifestRestart(Wire):
    from_round: int
    at: str
    reason: str


class ManifestStrategy(Wire):
    name: str
    params: dict[str, float]


class ManifestWeights(Wire):
    format: Literal["safetensors"] = "safetensors"
    sha256: str


class FactoryGain(Wire):
    """One factory's held-out metrics for the federated model and for a model trained on its
    own rows alone with the same budget: what joining gained it."""

    org: str
    examples: int = Field(description="The factory's held-out rows")
    federated: dict[str, float]
    alone: dict[str, float]


# The metrics a gain table compares, by task (the first is the headline).
GAIN_METRICS = {"classification": ("macro_f1", "accuracy"), "regression": ("rmse", "mae")}


class PublishedRound(Wire):
    """Which round's global weights the model is, by which rule, and how that round compares
    with the last one and the best one on the task's headline metric (held-out rows)."""

    round: int = Field(ge=1, description="The round whose weights were published")
    rule: PublishRule
    metric: str = Field(description="The metric rounds are compared by")
    higher_is_better: bool
    value: float | None = Field(description="The published round's figure (None: not evaluated)")
    last_round: int = Field(ge=1, description="The last aggregated round")
    last_value: float | None
    best_round: int | None = Field(description="The best round by the metric (None: none was)")
    best_value: float | None

    def warning(self) -> str | None:
        """What a reader should know when the last round is not the best one, or None."""
        if self.best_round is None or self.best_round == self.last_round:
            return None
        best = f"round {self.best_round} had {self.metric} {self.best_value:.4f}"
        last = f"the last round ({self.last_round}) has {self._figure(self.last_value)}"
        if self.round == self.last_round:
            return (
                f"the last round is not the best: {last}, {best}; launch with --publish best "
                "to publish the best round"
            )
        return (
            f"the last round is not the best: {last}; published the best, {best} (chosen on the "
            "same held-out rows that report it, so that figure is optimistic)"
        )

    def _figure(self, value: float | None) -> str:
        return "no evaluation" if value is None else f"{self.metric} {value:.4f}"


def choose_round(rounds: list[RoundReport], task: str, rule: PublishRule) -> PublishedRound:
    """The round whose weights a run publishes: the last aggregated one, or (``best``) the
    one with the best evaluation by the task's headline metric, the later on a tie. A rule of
    ``best`` with no evaluated round publishes the last. Raises ValueError with no aggregated
    round."""
    aggregated = sorted((r for r in rounds if r.aggregated), key=lambda r: r.round)
    if not aggregated:
        raise ValueError("no aggregated round")
    metric, higher = GAIN_METRICS[task][0], task != "regression"
    scores = {
        r.round: r.evaluate[metric]
        for r in aggregated
        if metric in r.evaluate and abs(r.evaluate[metric]) < float("inf")  # not NaN nor ±inf
    }
    best = max(scores, key=lambda n: ((scores[n] if higher else -scores[n]), n), default=None)
    last = aggregated[-1].round
    chosen = best if rule == "best" and best is not None else last
    return PublishedRound(
        round=chosen,
        rule=rule,
        metric=metric,
        higher_is_better=higher,
        value=scores.get(chosen),
        last_round=last,
        last_value=scores.get(last),
        best_round=best,
        best_value=None if best is None else scores[best],
    )


def factory_gains(rounds: list[RoundReport]) -> list[FactoryGain]:
    """The gain table of a run: the last evaluation whose factories report alone-metrics."""
    for report in reversed(rounds):
        gains = []
        for result in report.evaluate_factories:
            alone = {
                name.removeprefix(ALONE_PREFIX): value
                for name, value in result.metrics.items()
                if name.startswith(ALONE_PREFIX)
            }
            if alone:
                federated = {k: v for k, v in result.metrics.items() if k in alone}
                gains.append(
                    FactoryGain(
                        org=result.org, examples=result.examples, federated=federated, alone=alone
                    )
                )
        if gains:
            return sorted(gains, key=lambda g: g.org)
    return []


class ModelManifest(Wire):
    """What a partner reads about a model before using it."""

    format: Literal["fedpark-model-manifest/v3"] = "fedpark-model-manifest/v3"
    experiment: ManifestExperiment
    contract: ManifestContract
    participants: list[str] = Field(
        description="Whose updates are in the model: the contributors of aggregated rounds"
    )
    invited: list[str]
    min_factories: int
    rounds: list[ManifestRound]
    restarts: list[ManifestRestart] = Field(
        description="Runs resumed after their SuperLink was lost: from which round's checkpoint"
    )
    strategy: ManifestStrategy
    model: ModelSettings
    training: TrainSettings
    weights: ManifestWeights
    package: ModelPackage = Field(description="What running the weights needs: see predict")
    gains: list[FactoryGain] = Field(
        default_factory=list,
        description="Per factory: the federated model against one trained on its rows alone",
    )
    published: PublishedRound | None = Field(
        default=None,
        description="Which round's weights these are and why (None: the last round's, in "
        "manifests sealed before the choice was recorded)",
    )
    unseen_classes: list[LabelValue] = Field(
        default_factory=list,
        description="Label values no contributing factory declared at least k rows of",
    )
    fedpark_version: str
    started_at: str | None
    ended_at: str
    summary: dict[str, int | float | str]

    def canonical(self) -> bytes:
        """The bytes that are stored, downloaded and hashed."""
        return canonical(self.model_dump(mode="json"))


def contributors(rounds: list[RoundReport]) -> list[str]:
    """The factories whose updates are in the model: contributors of aggregated rounds."""
    return sorted({org for r in rounds if r.aggregated for org in r.contributors})


def sign_manifest(
    manifest: ModelManifest, experiment_id: str, hub: str, key: Ed25519PrivateKey
) -> dict[str, Any]:
    """The hub's signature over the manifest's and the weights' sha256."""
    return sign_document(
        {
            "kind": SIGNATURE_KIND,
            "experiment_id": experiment_id,
            "manifest_sha256": hashlib.sha256(manifest.canonical()).hexdigest(),
            "weights_sha256": manifest.weights.sha256,
            "hub": hub,
        },
        key,
    )


def verify_model(
    weights: bytes, manifest: bytes, document: Any, public_key: Ed25519PublicKey
) -> dict[str, Any]:
    """Check that the hub signed this manifest and that it names exactly these weights.

    Returns the signed statement. Raises :class:`SignatureError` saying what differs.
    """
    payload = verify_manifest(manifest, document, public_key)
    if payload.get("weights_sha256") != hashlib.sha256(weights).hexdigest():
        raise SignatureError("the weights differ from the signed ones (sha256 mismatch)")
    return payload


def verify_manifest(manifest: bytes, document: Any, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Check that the hub signed this manifest (and that it names the signed weights' hash);
    the weights themselves are checked by :func:`verify_model`."""
    payload = verify_document(document, public_key)
    if payload.get("kind") != SIGNATURE_KIND:
        raise SignatureError("this signature is not a model manifest's")
    if payload.get("manifest_sha256") != hashlib.sha256(manifest).hexdigest():
        raise SignatureError("the manifest differs from the signed one (sha256 mismatch)")
    try:
        facts = json.loads(manifest)
    except ValueError:
        raise SignatureError("the manifest is not JSON") from None
    named = facts.get("weights") if isinstance(facts, dict) else None
    if not isinstance(named, dict) or named.get("sha256") != payload.get("weights_sha256"):
        raise SignatureError("the manifest names other weights than the signature")
    return payload
