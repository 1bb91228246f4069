"""Federated experiments: launch on Flower, read, stop; the models partners may download.

The hub never trains: it checks the launch against the contract's policy, combines the
participants' declared profiles into normalization statistics and starts the run on the
SuperLink through its Control API. What the run's ServerApp reports is recorded by
``runs.RunReportService``; the run is watched (and resumed) by ``supervisor.RunSupervisor``.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

from fedpark.contracts.model import ColumnRole, Contract
from fedpark.contracts.report import DataProfile
from fedpark.experiments.protocol import HubOutput, RunSpec, StrategyName
from fedpark.experiments.protocol.resources.experiments import ExperimentCreate
from fedpark.experiments.protocol.spec import pooled_normalization, standardized_columns
from fedpark.hub.domain import Page, Principal, Role
from fedpark.hub.errors import (
    ConflictError,
    FlowerUnavailableError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from fedpark.hub.flower.control import FlowerControl, SubStatus
from fedpark.hub.lifecycle import ACTIVE, ContractStatus, ExperimentStatus
from fedpark.hub.services.audit import describe
from fedpark.hub.services.contracts import ContractService
from fedpark.hub.services.tokens import hash_token, new_run_token
from fedpark.hub.storage import Storage
from fedpark.hub.storage.models import (
    Experiment,
    ExperimentRound,
    ModelPart,
    TrainedModel,
    utcnow,
)

log = logging.getLogger(__name__)


class ExperimentService:
    def __init__(
        self,
        storage: Storage,
        contracts: ContractService,
        hub_url: str,
        flower: FlowerControl | None,
    ) -> None:
        self.storage = storage
        self.contracts = contracts
        self.hub_url = hub_url
        self.flower = flower
        self.bucket = storage.buckets["models"]

    # -- who sees what --------------------------------------------------------------------

    @staticmethod
    def _visible(caller: Principal, row: Experiment) -> bool:
        if caller.role is Role.STEWARD or caller.is_park_admin or caller.org_id == row.org_id:
            return True
        return caller.role is Role.FACTORY and caller.org_id in row.participants

    def _row(self, caller: Principal, experiment_id: str) -> Experiment:
        with self.storage.unit_of_work() as uow:
            row = uow.experiments.get(experiment_id)
        if row is None or not self._visible(caller, row):
            raise NotFoundError(f"no experiment {experiment_id!r}")
        return row

    # -- launch ---------------------------------------------------------------------------

    def launch(self, caller: Principal, body: ExperimentCreate) -> Experiment:
        if caller.role is not Role.RESEARCHER:
            raise PermissionDeniedError("only researchers launch experiments")
        row, contract = self.contracts.get(caller, body.contract_id, body.contract_version)
        if row.status != ContractStatus.APPROVED:
            raise ConflictError(f"contract {row.contract_id} {row.version} is {row.status}")
        policy = contract.policy
        if caller.org_id not in policy.experiment_orgs and caller.org_id != contract.owner:
            raise PermissionDeniedError(
                f"the contract's policy does not let {caller.org_id!r} launch experiments"
            )
        if "federated-training" not in policy.purposes:
            raise PermissionDeniedError("the contract's policy does not allow federated training")
        if policy.expires is not None and policy.expires < datetime.now(UTC).date():
            raise ConflictError(f"the contract's policy expired on {policy.expires}")
        if body.min_factories < policy.min_factories:
            raise InvalidInputError(
                f"min_factories must be at least the contract's k = {policy.min_factories}",
                field="min_factories",
            )
        series = body.model.series
        if series is not None and series not in {
            c.name for c in contract.columns if c.role is ColumnRole.ID
        }:
            raise InvalidInputError(
                f"series must name an id column of the contract, not {series!r}",
                field="model.series",
            )
        if body.strategy is StrategyName.FEDPROX:
            self._check_proximal_mu(body.strategy_params)
        profiles = self._participant_profiles(caller, body)
        if self.flower is None:
            raise FlowerUnavailableError.not_configured()
        token = new_run_token()
        experiment_id = f"exp-{uuid.uuid4().hex[:12]}"
        describe(f"experiment:{experiment_id}")  # the audit record commits with the row
        spec = self._spec(
            experiment_id,
            contract,
            row.document_sha256,
            body,
            profiles,
            token,
        )
        run_id = self.flower.start_run(spec)
        try:
            return self._record_launch(
                caller, body, experiment_id, row.document_sha256, run_id, token, spec
            )
        except Exception:
            self.flower.stop(run_id)  # never leave a run the hub does not know about
            raise

    @staticmethod
    def _check_proximal_mu(params: dict[str, float]) -> None:
        """FedProx must say its mu: Flower's default of 0 is FedAvg, so a launch that names
        FedProx and says nothing would record one strategy and train another. (Checked at
        launch only: experiments stored before the rule still read.)"""
        mu = params.get("proximal_mu")
        if mu is None:
            raise InvalidInputError(
                "fedprox needs proximal_mu (without it, it is FedAvg), e.g. 0.1",
                field="strategy_params",
            )
        if mu < 0:
            raise InvalidInputError(
                f"proximal_mu must be 0 or more, not {mu}", field="strategy_params"
            )

    def _record_launch(
        self,
        caller: Principal,
        body: ExperimentCreate,
        experiment_id: str,
        contract_sha256: str,
        run_id: int,
        token: str,
        spec: RunSpec,
    ) -> Experiment:
        with self.storage.unit_of_work() as uow:
            return uow.experiments.add(
                Experiment(
                    id=experiment_id,
                    name=body.name,
                    contract_id=body.contract_id,
                    contract_version=body.contract_version,
                    contract_sha256=contract_sha256,
                    org_id=caller.org_id,
                    created_by=caller.username,
                    status=ExperimentStatus.PENDING,
                    settings=body,
                    participants=body.participants,
                    flower_run_id=str(run_id),
                    run_token_hash=hash_token(token),
                    run_spec=spec.without_secrets(),  # never the run token
                    started_at=utcnow(),
                )
            )

    def _participant_profiles(self, caller: Principal, body: ExperimentCreate) -> list[DataProfile]:
        """Each participant must have declared compliant data under this version."""
        with self.storage.unit_of_work() as uow:
            rows = uow.datasets.list(
                body.contract_id, body.contract_version, org_id=None, offset=0, limit=10_000
            )
        compliant: dict[str, list[DataProfile]] = {}
        for dataset in rows:
            if dataset.compliant:
                compliant.setdefault(dataset.org_id, []).append(dataset.profile)
        missing = [org for org in body.participants if org not in compliant]
        if missing:
            raise InvalidInputError(
                f"no compliant dataset declared by: {', '.join(missing)}", field="participants"
            )
        return [p for org in body.participants for p in compliant[org]]

    def _spec(
        self,
        experiment_id: str,
        contract: Contract,
        contract_sha256: str,
        body: ExperimentCreate,
        profiles: list[DataProfile],
        token: str,
    ) -> RunSpec:
        """What the run's ServerApp and ClientApps read from Flower's run config."""
        return RunSpec(
            **body.plan().model_dump(),
            experiment_id=experiment_id,
            contract=contract.model_dump(mode="json"),
            contract_sha256=contract_sha256,
            participants=body.participants,
            normalization=pooled_normalization(
                profiles, standardized_columns(contract, body.model.task)
            ),
            output=HubOutput(hub_url=self.hub_url, run_token=token),
        )

    # -- reading and stopping -------------------------------------------------------------

    def get(self, caller: Principal, experiment_id: str) -> Experiment:
        return self._row(caller, experiment_id)

    def visible(self, caller: Principal, page: Page) -> list[Experiment]:
        with self.storage.unit_of_work() as uow:
            if caller.role is Role.STEWARD or caller.is_park_admin:
                return uow.experiments.search(offset=page.offset, limit=page.limit)
            rows = uow.experiments.search(offset=0, limit=10_000)
        visible = [r for r in rows if self._visible(caller, r)]
        return visible[page.offset : page.offset + page.limit]

    def rounds(self, caller: Principal, experiment_id: str) -> list[ExperimentRound]:
        self._row(caller, experiment_id)
        with self.storage.unit_of_work() as uow:
            return uow.experiments.rounds(experiment_id)

    def stop(self, caller: Principal, experiment_id: str) -> Experiment:
        row = self._row(caller, experiment_id)
        if caller.role is not Role.RESEARCHER or caller.org_id != row.org_id:
            raise PermissionDeniedError("only the launching organization's researchers stop it")
        if row.status not in ACTIVE:
            raise ConflictError(f"experiment {experiment_id} is already {row.status}")
        stopped_in_flower = False  # by this request's own call
        if self.flower is not None and row.flower_run_id is not None:
            run_id = int(row.flower_run_id)
            try:
                self.flower.stop(run_id)
                stopped_in_flower = True
            except ConflictError:  # Flower has finished the run already
                self._refuse_finished_run(experiment_id, self.flower.status(run_id).sub_status)
        stopped_by = "stopped by " + caller.username
        # Of concurrent stops (and finishes, failures), the catalog's conditional move picks one.
        with self.storage.unit_of_work() as uow:
            won = uow.experiments.move(
                experiment_id, ExperimentStatus.STOPPED, ended_at=utcnow(), error=stopped_by
            )
            stopped = uow.experiments.get(experiment_id)
            assert stopped is not None
            if not won and stopped.status == ExperimentStatus.STOPPED and stopped_in_flower:
                # The run watcher saw this request's stop in Flower and recorded it first:
                # it is still this request's stop, and the record says whose.
                stopped.error, won = stopped_by, True
        if not won:
            raise ConflictError(f"experiment {experiment_id} is already {stopped.status}")
        if self.flower is not None and stopped.flower_run_id not in (None, row.flower_run_id):
            # The supervisor resumed a lost run meanwhile: its continuation stops too.
            with contextlib.suppress(ConflictError, FlowerUnavailableError):
                self.flower.stop(int(stopped.flower_run_id))
        return stopped

    @staticmethod
    def _refuse_finished_run(experiment_id: str, sub_status: str) -> None:
        """Whether a stop goes on when Flower has finished the run: one stopped (by a
        concurrent stop or in Flower) or completed is not this request's to stop; one that
        failed was lost, and stopping the experiment keeps the supervisor from resuming it."""
        if sub_status == SubStatus.STOPPED:
            raise ConflictError(f"experiment {experiment_id} is already stopped")
        if sub_status == SubStatus.COMPLETED:
            raise ConflictError(
                f"experiment {experiment_id}'s run has ended in Flower: its result is being "
                "recorded"
            )

    # -- models for partners --------------------------------------------------------------

    def model_access(self, caller: Principal, experiment_id: str) -> TrainedModel:
        """The model, if the contract's policy lets the caller's organization download it."""
        with self.storage.unit_of_work() as uow:
            run = uow.experiments.get(experiment_id)
            model = uow.experiments.model(experiment_id) if run else None
        if run is None or model is None:
            raise NotFoundError(f"no model for experiment {experiment_id!r}")
        _, contract = self.contracts.get(caller, run.contract_id, run.contract_version)
        if not self._may_download(caller, run, contract):
            raise NotFoundError(f"no model for experiment {experiment_id!r}")
        return model

    @staticmethod
    def _may_download(caller: Principal, run: Experiment, contract: Contract) -> bool:
        return (
            caller.org_id in contract.policy.model_download_orgs
            or caller.org_id == run.org_id
            or caller.is_park_admin
        )

    def downloadable(self, caller: Principal, page: Page) -> list[tuple[Experiment, TrainedModel]]:
        """The models the caller's organization may download, newest first."""
        with self.storage.unit_of_work() as uow:
            rows = uow.experiments.models(offset=0, limit=10_000)
        contracts: dict[tuple[str, str], Contract | None] = {}
        allowed = []
        for run, model in rows:
            key = (run.contract_id, run.contract_version)
            if key not in contracts:
                try:
                    contracts[key] = self.contracts.get(caller, *key)[1]
                except NotFoundError:
                    contracts[key] = None
            contract = contracts[key]
            if contract is not None and self._may_download(caller, run, contract):
                allowed.append((run, model))
        return allowed[page.offset : page.offset + page.limit]

    def model_bytes(self, caller: Principal, experiment_id: str, part: ModelPart) -> bytes:
        """A small part of a model (its manifest, its signature), verified."""
        model = self.model_access(caller, experiment_id)
        return self.storage.objects.read(self.bucket, model.ref(part))

    def model_file(self, caller: Principal, experiment_id: str, part: ModelPart) -> Path:
        """A verified copy of a part of a model (its weights: up to gigabytes), to serve in
        bounded memory and remove."""
        model = self.model_access(caller, experiment_id)
        return self.storage.objects.fetch(self.bucket, model.ref(part))


def set_status(
    storage: Storage, experiment_id: str, status: ExperimentStatus, error: str | None = None
) -> Experiment:
    """Close (or start) an experiment that is still open; a closed one stays as it ended (of
    concurrent closes, the first wins). The row as it is afterwards."""
    fields: dict[str, object] = {} if status in ACTIVE else {"ended_at": utcnow()}
    if error:
        fields["error"] = error
    with storage.unit_of_work() as uow:
        uow.experiments.move(experiment_id, status, **fields)
        row = uow.experiments.get(experiment_id)
        assert row is not None
        return row
