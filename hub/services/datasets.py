"""Declared datasets: "we hold data under contract C version V", with proof but no rows."""

from __future__ import annotations

import uuid

from fedpark.contracts.report import DataProfile, ValidationReport
from fedpark.hub.domain import Page, Principal, Role
from fedpark.hub.errors import ConflictError, InvalidInputError, PermissionDeniedError
from fedpark.hub.lifecycle import ContractStatus
from fedpark.hub.metrics import HubMetrics
from fedpark.hub.services.contracts import ContractService
from fedpark.hub.storage import Storage
from fedpark.hub.storage.models import ContractVersion, DeclaredDataset, utcnow

# Who sees every organization's declarations for a contract.
OVERSEERS = frozenset({Role.STEWARD, Role.RESEARCHER})


class DatasetService:
    def __init__(
        self, storage: Storage, contracts: ContractService, metrics: HubMetrics | None = None
    ) -> None:
        self.storage = storage
        self.contracts = contracts
        self.metrics = metrics or HubMetrics()

    def declare(
        self,
        caller: Principal,
        contract_id: str,
        version: str,
        name: str,
        report: ValidationReport,
        profile: DataProfile,
    ) -> DeclaredDataset:
        """Record (or refresh) a factory's declaration for an approved contract version."""
        if caller.role is not Role.FACTORY:
            raise PermissionDeniedError("only factories declare datasets")
        row, _ = self.contracts.get(caller, contract_id, version)  # 404 for unknown ids
        try:
            self._check_declaration(row, contract_id, version, report, profile)
        except (ConflictError, InvalidInputError):
            self.metrics.on_declaration_refused(contract_id)  # a known contract: bounded label
            raise
        with self.storage.unit_of_work() as uow:
            existing = uow.datasets.find(contract_id, version, caller.org_id, name)
            dataset = existing or DeclaredDataset(
                id=str(uuid.uuid4()),
                contract_id=contract_id,
                version=version,
                org_id=caller.org_id,
                name=name,
            )
            dataset.declared_by, dataset.declared_at = caller.username, utcnow()
            dataset.rows, dataset.compliant = report.rows, report.passed
            dataset.report, dataset.profile = report, profile
            if not existing:
                dataset = uow.datasets.add(dataset)
        self.metrics.on_declaration(contract_id, report.passed)  # committed
        return dataset

    @staticmethod
    def _check_declaration(
        row: ContractVersion,
        contract_id: str,
        version: str,
        report: ValidationReport,
        profile: DataProfile,
    ) -> None:
        """The report must be the validator's, run against this approved document."""
        if row.status != ContractStatus.APPROVED:
            raise ConflictError(f"contract {contract_id} {version} is {row.status}, not approved")
        if (report.contract_id, report.contract_version) != (contract_id, version):
            raise InvalidInputError(
                "the report is for another contract version", field="report.contract_version"
            )
        if report.contract_sha256 != row.document_sha256:
            raise InvalidInputError(
                "the report was made against a different contract document (sha256 mismatch): "
                "download the approved version and validate again",
                field="report.contract_sha256",
            )
        if profile.rows != report.rows:
            raise InvalidInputError("the profile and the report disagree on rows", field="profile")

    def of_org(self, caller: Principal, page: Page) -> list[DeclaredDataset]:
        """The caller's organization's declarations, newest first (its factory users and
        admins); the last validation report of each comes with it."""
        if caller.role not in (Role.FACTORY, Role.ADMIN):
            raise PermissionDeniedError("a factory's users and admins see its declarations")
        with self.storage.unit_of_work() as uow:
            return uow.datasets.of_org(caller.org_id, offset=page.offset, limit=page.limit)

    def list(
        self, caller: Principal, contract_id: str, version: str, page: Page
    ) -> list[DeclaredDataset]:
        """Stewards and researchers see every factory; a factory sees its own declarations."""
        self.contracts.get(caller, contract_id, version)  # 404 when not visible
        if caller.role in OVERSEERS or caller.is_park_admin:
            org = None
        elif caller.role is Role.FACTORY:
            org = caller.org_id
        else:
            raise PermissionDeniedError("stewards, researchers and factories see declarations")
        with self.storage.unit_of_work() as uow:
            return uow.datasets.list(
                contract_id, version, org_id=org, offset=page.offset, limit=page.limit
            )
