"""What a run's ServerApp reports, authenticated with the run's own token: checkpoints, round
reports, the final model, and the sealing of that model with a signed provenance manifest.

Every report is idempotent: the ServerApp retries a report whose answer it never saw (a hub
restart, a storage outage), and a retry of something already recorded is accepted once.
"""

from __future__ import annotations

from pathlib import Path

from fedpark.contracts import Contract, contract_sha256
from fedpark.contracts.signing import canonical
from fedpark.experiments.protocol import RoundReport
from fedpark.experiments.protocol.manifest import (
    ManifestContract,
    ManifestExperiment,
    ManifestRestart,
    ManifestRound,
    ManifestStrategy,
    ManifestWeights,
    ModelManifest,
    PublishedRound,
    choose_round,
    contributors,
    factory_gains,
    sign_manifest,
)
from fedpark.experiments.protocol.package import LabelValue, ModelPackage
from fedpark.experiments.protocol.resources.experiments import RoundReportCreate, RunFinishCreate
from fedpark.hub.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ObjectNotFoundError,
)
from fedpark.hub.lifecycle import ACTIVE, ExperimentStatus
from fedpark.hub.metrics import HubMetrics
from fedpark.hub.services.experiments import set_status
from fedpark.hub.services.keys import HubKey
from fedpark.hub.services.tokens import hash_token
from fedpark.hub.storage import Storage
from fedpark.hub.storage.models import Experiment, ExperimentRound, TrainedModel, utcnow
from fedpark.hub.storage.objects import ObjectRef, Spool
from fedpark.hub.version import __version__


class RunReportService:
    def __init__(
        self, storage: Storage, key: HubKey, hub_url: str, metrics: HubMetrics | None = None
    ) -> None:
        self.storage = storage
        self.key = key
        self.hub_url = hub_url
        self.bucket = storage.buckets["models"]
        self.metrics = metrics or HubMetrics()

    def authenticate_run(
        self, experiment_id: str, token: str, *, finished_ok: bool = False
    ) -> Experiment:
        """The run a ServerApp's token stands for; reports close when the run ends (a retried
        ``finish`` may still find it finished)."""
        with self.storage.unit_of_work() as uow:
            row = uow.experiments.by_token_hash(hash_token(token))
        if row is None or row.id != experiment_id:
            raise AuthenticationError("unknown run token for this experiment")
        if finished_ok and row.status == ExperimentStatus.FINISHED:
            return row
        if row.status not in ACTIVE:
            raise ConflictError(f"experiment {experiment_id} is {row.status}: reports are closed")
        return row

    def store_checkpoint(self, run: Experiment, number: int, body: Spool) -> None:
        """Keep a round's global weights; the round's report follows in a second call."""
        stored = self.storage.objects.put_spool(
            self.bucket, f"{run.id}/checkpoints/round-{number:04d}.safetensors", body
        )
        with self.storage.unit_of_work() as uow:
            row = uow.experiments.round(run.id, number)
            if row is None:
                row = uow.experiments.add_round(
                    ExperimentRound(experiment_id=run.id, round=number, report=None)
                )
            elif row.checkpoint_key is not None:
                if row.checkpoint_sha256 == stored.sha256:
                    return  # a retry of an upload whose answer was lost: already done
                raise ConflictError(f"round {number} of {run.id} already has a checkpoint")
            row.checkpoint_key, row.checkpoint_sha256 = stored.key, stored.sha256
            row.checkpoint_version_id = stored.version_id

    def checkpoint_file(self, run: Experiment, number: int) -> Path:
        """A recorded round's weights, for the run's own ServerApp (a resumed run starts
        from them): a copy checked against the sha256 recorded with the round, to serve
        and remove."""
        with self.storage.unit_of_work() as uow:
            row = uow.experiments.round(run.id, number)
        checkpoint = row.checkpoint if row is not None and row.report else None
        if checkpoint is None:
            raise NotFoundError(f"round {number} of {run.id} has no recorded checkpoint")
        return self.storage.objects.fetch(self.bucket, checkpoint)

    def record_round(self, run: Experiment, report: RoundReportCreate) -> None:
        """Keep a round's report. A round below k is recorded as such (it aggregated nothing);
        the ServerApp, which decides when the run ends, reports the failure itself."""
        k = run.settings.min_factories
        if report.aggregated and len(set(report.contributors)) < k:
            raise InvalidInputError(
                f"round {report.round} aggregated {len(set(report.contributors))} factories' "
                f"updates, fewer than the experiment's k = {k}: not recorded",
                field="contributors",
            )
        with self.storage.unit_of_work() as uow:
            row = uow.experiments.round(run.id, report.round)
            if row is None:
                row = uow.experiments.add_round(
                    ExperimentRound(experiment_id=run.id, round=report.round, report=None)
                )
            elif row.report:
                if row.report == report:
                    return  # a retried report (the ServerApp never saw the first answer)
                raise ConflictError(f"round {report.round} of {run.id} is already recorded")
            row.report = report
            experiment = uow.experiments.get(run.id)
            assert experiment is not None
            experiment.rounds_completed = max(experiment.rounds_completed, report.round)
            uow.experiments.move(run.id, ExperimentStatus.RUNNING)
        self.metrics.on_round(run.contract_id, report)  # committed; a retry returned above

    def store_model(self, run: Experiment, body: Spool) -> None:
        self.storage.objects.put_spool(self.bucket, f"{run.id}/model.safetensors", body)

    def finish(self, run: Experiment, body: RunFinishCreate) -> TrainedModel:
        """Seal the run: the uploaded model with a provenance manifest signed by the hub.

        The manifest carries the ServerApp's description of the model (its package), after
        checking that it describes this run: the approved contract it was launched on and
        the architecture the researcher chose.
        """
        with self.storage.unit_of_work() as uow:
            sealed = uow.experiments.model(run.id)
            if sealed is not None:  # a retried finish: the first one went through
                return sealed
            recorded = [r for r in uow.experiments.rounds(run.id) if r.report is not None]
        rounds = [r.report for r in recorded if r.report is not None]
        try:
            stored = self.storage.objects.stat(self.bucket, f"{run.id}/model.safetensors")
        except ObjectNotFoundError:
            raise ConflictError(
                f"experiment {run.id} has no uploaded model to finish with"
            ) from None
        if not stored.sha256:
            raise ConflictError(f"experiment {run.id} has no uploaded model to finish with")
        if not any(r.aggregated for r in rounds):
            raise ConflictError(f"experiment {run.id} has no aggregated round: nothing to seal")
        _check_package(run, body.package)
        published = choose_round(rounds, run.settings.model.task, run.settings.publish)
        weights = ObjectRef(stored.key, stored.sha256, stored.version_id)  # the last round's
        if published.round != published.last_round:
            weights = _checkpoint(recorded, published.round)
        manifest = self._manifest(run, rounds, weights, body, published)
        manifest_bytes = manifest.canonical()
        signature = sign_manifest(manifest, run.id, self.hub_url, self.key.private_key)
        manifest_obj = self.storage.objects.put_bytes(
            self.bucket, f"{run.id}/manifest.json", manifest_bytes, "application/json"
        )
        signature_obj = self.storage.objects.put_bytes(
            self.bucket, f"{run.id}/manifest.sig.json", canonical(signature), "application/json"
        )
        with self.storage.unit_of_work() as uow:
            model = uow.experiments.add_model(
                TrainedModel(
                    experiment_id=run.id,
                    contributors=manifest.participants,
                    weights_key=weights.key,
                    weights_sha256=weights.sha256,
                    weights_version_id=weights.version_id,
                    manifest_key=manifest_obj.key,
                    manifest_sha256=manifest_obj.sha256,
                    manifest_version_id=manifest_obj.version_id,
                    signature_key=signature_obj.key,
                    signature_sha256=signature_obj.sha256,
                    signature_version_id=signature_obj.version_id,
                )
            )
            if not uow.experiments.move(run.id, ExperimentStatus.FINISHED, ended_at=utcnow()):
                # stopped or failed while sealing: no model for it (the insert rolls back)
                raise ConflictError(f"experiment {run.id} closed before its model was sealed")
            return model

    def fail(self, run: Experiment, reason: str) -> None:
        set_status(self.storage, run.id, ExperimentStatus.FAILED, reason)

    def _manifest(
        self,
        run: Experiment,
        rounds: list[RoundReport],
        weights: ObjectRef,
        body: RunFinishCreate,
        published: PublishedRound,
    ) -> ModelManifest:
        settings = run.settings
        assert weights.sha256 is not None
        summary = {k: v for k, v in body.summary.items() if isinstance(v, int | float | str)}
        if "weights_sha256" in summary:  # the ServerApp names its last round's weights
            summary["weights_sha256"] = weights.sha256
        return ModelManifest(
            experiment=ManifestExperiment(
                id=run.id, name=run.name, launched_by=run.created_by, organization=run.org_id
            ),
            contract=ManifestContract(
                id=run.contract_id, version=run.contract_version, sha256=run.contract_sha256
            ),
            participants=contributors(rounds),
            invited=run.participants,
            min_factories=settings.min_factories,
            rounds=[ManifestRound.of(r) for r in rounds],
            restarts=[
                ManifestRestart(from_round=r.from_round, at=r.at.isoformat(), reason=r.reason)
                for r in run.restarts
            ],
            strategy=ManifestStrategy(name=settings.strategy, params=settings.strategy_params),
            model=settings.model,
            training=settings.train,
            weights=ManifestWeights(sha256=weights.sha256),
            published=published,
            package=body.package,
            gains=factory_gains(rounds),
            unseen_classes=self._unseen_classes(run, body.package, contributors(rounds)),
            fedpark_version=__version__,
            started_at=run.started_at.isoformat() if run.started_at else None,
            ended_at=utcnow().isoformat(),
            summary=summary,
        )

    def _unseen_classes(
        self, run: Experiment, package: ModelPackage, orgs: list[str]
    ) -> list[LabelValue]:
        """The classes none of ``orgs`` declared at least k rows of (their compliant data
        under the run's contract version): the model cannot have learned them."""
        classes = package.features.classes
        if package.task != "classification" or not classes:
            return []
        with self.storage.unit_of_work() as uow:
            rows = uow.datasets.list(
                run.contract_id, run.contract_version, org_id=None, offset=0, limit=10_000
            )
        seen: set[str] = set()
        for dataset in rows:
            if dataset.compliant and dataset.org_id in orgs:
                label = [c for c in dataset.profile.columns if c.name == package.features.label]
                seen.update(str(name) for c in label for name in (c.categories or {}))
        return [c for c in classes if str(c) not in seen]


def _checkpoint(recorded: list[ExperimentRound], number: int) -> ObjectRef:
    """The weights recorded with round ``number`` (the one a rule chose to publish)."""
    row = next((r for r in recorded if r.round == number), None)
    checkpoint = row.checkpoint if row is not None else None
    if checkpoint is None or not checkpoint.sha256:
        raise ConflictError(f"round {number} has no recorded checkpoint to publish")
    return checkpoint


def _check_package(run: Experiment, package: ModelPackage) -> None:
    """The package must describe the run: its approved contract and its architecture."""
    try:
        contract = Contract.model_validate(package.contract)
    except ValueError:
        raise InvalidInputError(
            "the model's package holds no valid contract", field="package"
        ) from None
    if contract_sha256(contract) != run.contract_sha256:
        raise InvalidInputError(
            "the model's package names another contract than the run's", field="package"
        )
    if package.architecture != run.settings.model:
        raise InvalidInputError(
            "the model's package describes another architecture than the run's", field="package"
        )
