"""Dataset contracts in the hub: drafts, review, signed approval, lifecycle, search.

Lifecycle::

    draft ──submit──► submitted ──approve──► approved ──deprecate──► deprecated ──retire──► retired
      ▲                   │
      └──── update ◄── rejected ◄──reject──┘

Who sees what: stewards and park admins see every version; everyone else sees the approved,
deprecated and retired ones, plus every version their own organization owns.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from datetime import UTC, datetime

from fedpark.contracts import Contract, canonical_json, contract_sha256
from fedpark.contracts.arrow import schema_ipc_bytes
from fedpark.contracts.compat import CompatibilityReport, compare
from fedpark.contracts.document import contract_from_data
from fedpark.contracts.errors import ContractError
from fedpark.contracts.model import semver_key
from fedpark.contracts.ref import ContractRef
from fedpark.contracts.signing import approval_payload, canonical, sign_document
from fedpark.experiments.protocol.resources.contracts import Compatibility, ContractChange
from fedpark.hub.domain import Page, Principal, Role
from fedpark.hub.errors import (
    ChangedMeanwhileError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from fedpark.hub.lifecycle import (
    BOUND,
    CONTRACT_TRANSITIONS,
    EDITABLE,
    PUBLIC,
    ContractAction,
    ContractStatus,
)
from fedpark.hub.services.keys import HubKey
from fedpark.hub.storage import Storage, UnitOfWork
from fedpark.hub.storage.models import (
    ContractColumnIndex,
    ContractPart,
    ContractVersion,
    utcnow,
)

AUTHOR_ROLES = frozenset({Role.FACTORY, Role.STEWARD, Role.RESEARCHER})


def _name(contract_id: str, version: str) -> str:
    return ContractRef(contract_id, version).display


class ContractService:
    def __init__(self, storage: Storage, key: HubKey, hub_url: str) -> None:
        self.storage = storage
        self.key = key
        self.hub_url = hub_url
        self.bucket = storage.buckets["contracts"]

    # -- visibility -----------------------------------------------------------------------

    @staticmethod
    def sees_all(caller: Principal) -> bool:
        return caller.role is Role.STEWARD or caller.is_park_admin

    def _visible(self, caller: Principal, row: ContractVersion) -> bool:
        return self.sees_all(caller) or row.status in PUBLIC or row.owner_org == caller.org_id

    def _row(
        self, uow: UnitOfWork, caller: Principal, contract_id: str, version: str
    ) -> ContractVersion:
        row = uow.contracts.get(contract_id, version)
        if row is None or not self._visible(caller, row):
            raise NotFoundError(f"no contract {_name(contract_id, version)}")
        return row

    # -- drafts ---------------------------------------------------------------------------

    def _check_author(self, caller: Principal, contract: Contract) -> None:
        if caller.role not in AUTHOR_ROLES:
            raise PermissionDeniedError("factories, stewards and researchers author contracts")
        if contract.owner != caller.org_id:
            raise InvalidInputError(
                f"owner must be your organization {caller.org_id!r}", field="owner"
            )

    def create(self, caller: Principal, contract: Contract) -> ContractVersion:
        """Store a new draft: a new contract id, or a higher version of one you own."""
        self._check_author(caller, contract)
        with self.storage.unit_of_work() as uow:
            _check_orgs(uow, contract)
            existing = uow.contracts.versions(contract.id)
            if any(r.owner_org != caller.org_id for r in existing):
                raise ConflictError(f"contract id {contract.id!r} belongs to another organization")
            if any(r.version == contract.version for r in existing):
                raise ConflictError(f"contract {_name(contract.id, contract.version)} exists")
            newest = max((r.version for r in existing), key=semver_key, default=None)
            if newest is not None and semver_key(contract.version) <= semver_key(newest):
                raise InvalidInputError(
                    f"version must be higher than the newest, {newest}", field="version"
                )
            compatibility = self._compatibility(uow, existing, contract)
            row = ContractVersion(
                contract_id=contract.id,
                version=contract.version,
                owner_org=contract.owner,
                title=contract.title,
                domain=contract.domain.value,
                status=ContractStatus.DRAFT,
                created_by=caller.username,
                compatibility=compatibility,
                **self._store(contract),
            )
            return uow.contracts.add(row, _columns(contract))

    def update(
        self, caller: Principal, contract_id: str, version: str, contract: Contract
    ) -> ContractVersion:
        """Replace a draft (or a rejected version, which becomes a draft again)."""
        if (contract.id, contract.version) != (contract_id, version):
            raise InvalidInputError(
                f"the document is {_name(contract.id, contract.version)}, "
                f"not {_name(contract_id, version)}: a change of version is a new draft",
                field="version",
            )
        self._check_author(caller, contract)
        with self.storage.unit_of_work() as uow:
            row = self._row(uow, caller, contract_id, version)
            if row.owner_org != caller.org_id:
                raise NotFoundError(f"no contract {_name(contract_id, version)}")
            if row.status not in EDITABLE:
                raise ConflictError(
                    f"contract {_name(contract_id, version)} is {row.status}: approved versions "
                    "are immutable, publish a new version instead"
                )
            _check_orgs(uow, contract)
            others = [r for r in uow.contracts.versions(contract_id) if r.version != version]
            stored = self._store(contract)
            for field, value in stored.items():
                setattr(row, field, value)
            row.title, row.domain = contract.title, contract.domain.value
            row.status, row.reason, row.updated_at = ContractStatus.DRAFT, None, utcnow()
            _clear_decision(row)  # a changed document carries no earlier signature
            row.compatibility = self._compatibility(uow, others, contract)
            uow.contracts.replace_columns(contract_id, version, _columns(contract))
            return row

    def _store(self, contract: Contract) -> dict[str, str | None]:
        base = ContractRef(contract.id, contract.version).object_prefix
        document = self.storage.objects.put_bytes(
            self.bucket, f"{base}/contract.json", canonical_json(contract), "application/json"
        )
        schema = self.storage.objects.put_bytes(
            self.bucket,
            f"{base}/schema.arrow",
            schema_ipc_bytes(contract),
            "application/vnd.apache.arrow.stream",
        )
        return {
            "document_sha256": document.sha256,
            "document_key": document.key,
            "document_version_id": document.version_id,
            "schema_sha256": schema.sha256,
            "schema_key": schema.key,
            "schema_version_id": schema.version_id,
        }

    def _compatibility(
        self, uow: UnitOfWork, existing: list[ContractVersion], contract: Contract
    ) -> Compatibility | None:
        """Compare with the newest version data may be held under (approved or deprecated)."""
        bound = [r for r in existing if r.status in BOUND]
        if not bound:
            return None
        previous = max(bound, key=lambda r: semver_key(r.version))
        report: CompatibilityReport = compare(self._load(previous), contract)
        return Compatibility(
            previous_version=report.previous_version,
            compatible=report.compatible,
            changes=[ContractChange(**asdict(c)) for c in report.changes],
        )

    # -- lifecycle ------------------------------------------------------------------------

    def _transition(
        self,
        caller: Principal,
        contract_id: str,
        version: str,
        action: ContractAction,
        reason: str | None = None,
    ) -> ContractVersion:
        """Move a version along ``action``'s transition: exactly one of several concurrent
        requests wins (the UPDATE is conditional on the row version it read); the others get
        409 with the state they lost to."""
        from_, to = CONTRACT_TRANSITIONS[action]
        signature: str | None = None
        try:
            with self.storage.unit_of_work() as uow:
                row = self._row(uow, caller, contract_id, version)
                self._authorize(caller, row, to)
                if row.status not in from_:
                    raise ConflictError(
                        f"contract {_name(contract_id, version)} is {row.status}; "
                        f"only a {' or '.join(sorted(from_))} version can become {to}"
                    )
                now = utcnow()
                if to is ContractStatus.SUBMITTED:
                    row.submitted_by, row.submitted_at = caller.username, now
                    _clear_decision(row)
                if to is ContractStatus.APPROVED:
                    signature = self._sign(caller, row, now)
                if to in (ContractStatus.APPROVED, ContractStatus.REJECTED):
                    row.decided_by, row.decided_at = caller.username, now
                row.status, row.updated_at = to, now
                if reason is not None:
                    row.reason = reason
                return row
        except ChangedMeanwhileError:
            if signature is not None:  # the loser's signature is never referenced: drop it
                self.storage.objects.delete_quietly(self.bucket, signature)
            with self.storage.unit_of_work() as uow:
                current = uow.contracts.get(contract_id, version)
            state = current.status if current else "gone"
            raise ConflictError(
                f"contract {_name(contract_id, version)} became {state} while this request "
                f"ran: it was not made {to}"
            ) from None

    @staticmethod
    def _authorize(caller: Principal, row: ContractVersion, to: ContractStatus) -> None:
        if to is ContractStatus.SUBMITTED:
            if row.owner_org != caller.org_id or caller.role not in AUTHOR_ROLES:
                raise PermissionDeniedError("only the owning organization's authors submit")
            return
        if caller.role is not Role.STEWARD:
            raise PermissionDeniedError("only data stewards review contracts")
        if to is ContractStatus.APPROVED and caller.username in (row.created_by, row.submitted_by):
            raise PermissionDeniedError("a steward cannot approve their own contract")

    def submit(self, caller: Principal, contract_id: str, version: str) -> ContractVersion:
        return self._transition(caller, contract_id, version, ContractAction.SUBMIT)

    def approve(self, caller: Principal, contract_id: str, version: str) -> ContractVersion:
        return self._transition(caller, contract_id, version, ContractAction.APPROVE)

    def reject(
        self, caller: Principal, contract_id: str, version: str, reason: str
    ) -> ContractVersion:
        return self._transition(caller, contract_id, version, ContractAction.REJECT, reason)

    def deprecate(self, caller: Principal, contract_id: str, version: str) -> ContractVersion:
        return self._transition(caller, contract_id, version, ContractAction.DEPRECATE)

    def retire(self, caller: Principal, contract_id: str, version: str) -> ContractVersion:
        return self._transition(caller, contract_id, version, ContractAction.RETIRE)

    def _sign(self, caller: Principal, row: ContractVersion, at: datetime) -> str:
        """Sign the approval into an object of its own (a request that loses the race leaves
        nothing another version of the row could point at); its key."""
        contract = self._load(row)
        payload = approval_payload(
            contract, caller.username, caller.org_id, at.astimezone(UTC), self.hub_url
        )
        document = sign_document(payload, self.key.private_key)
        stored = self.storage.objects.put_bytes(
            self.bucket,
            ContractRef(row.contract_id, row.version).object_prefix
            + f"/signature-{uuid.uuid4().hex}.json",
            canonical(document),
            "application/json",
        )
        row.signature_key, row.signature_sha256 = stored.key, stored.sha256
        row.signature_version_id = stored.version_id
        return stored.key

    # -- reading --------------------------------------------------------------------------

    def _load(self, row: ContractVersion) -> Contract:
        data = self.storage.objects.get_bytes(
            self.bucket,
            row.document_key,
            sha256=row.document_sha256,
            version_id=row.document_version_id,
        )
        name = _name(row.contract_id, row.version)
        try:
            contract = contract_from_data(json.loads(data), f"stored {name}")
        except (ValueError, ContractError):  # the bytes matched their sha256: written broken
            raise IntegrityError(f"the stored document of contract {name} is not one") from None
        if contract_sha256(contract) != row.document_sha256:  # belt and braces: re-canonicalize
            raise IntegrityError(f"the stored document of contract {name} is not the approved one")
        return contract

    def get(
        self, caller: Principal, contract_id: str, version: str
    ) -> tuple[ContractVersion, Contract]:
        with self.storage.unit_of_work() as uow:
            row = self._row(uow, caller, contract_id, version)
        return row, self._load(row)

    def versions(self, caller: Principal, contract_id: str) -> list[ContractVersion]:
        with self.storage.unit_of_work() as uow:
            rows = [r for r in uow.contracts.versions(contract_id) if self._visible(caller, r)]
        if not rows:
            raise NotFoundError(f"no contract {contract_id!r}")
        return sorted(rows, key=lambda r: semver_key(r.version))

    def latest_approved(self, caller: Principal, contract_id: str) -> ContractVersion:
        approved = [
            r for r in self.versions(caller, contract_id) if r.status == ContractStatus.APPROVED
        ]
        if not approved:
            raise NotFoundError(f"contract {contract_id!r} has no approved version")
        return approved[-1]

    def search(
        self,
        caller: Principal,
        page: Page,
        *,
        status: str | None,
        domain: str | None,
        owner: str | None,
        column: str | None,
        text: str | None,
    ) -> list[ContractVersion]:
        with self.storage.unit_of_work() as uow:
            return uow.contracts.search(
                offset=page.offset,
                limit=page.limit,
                statuses=[status] if status else None,
                domain=domain,
                owner=owner,
                column=column,
                text=text,
                visible_to_org=None if self.sees_all(caller) else caller.org_id,
                public_statuses=tuple(PUBLIC),
            )

    def artifact(
        self, caller: Principal, contract_id: str, version: str, part: ContractPart
    ) -> bytes:
        """The stored document, schema or signature bytes, verified on read."""
        with self.storage.unit_of_work() as uow:
            row = self._row(uow, caller, contract_id, version)
        ref = row.ref(part)
        if ref is None:
            raise NotFoundError(
                f"contract {_name(contract_id, version)} has no {part} ({row.status})"
            )
        return self.storage.objects.read(self.bucket, ref)


def _check_orgs(uow: UnitOfWork, contract: Contract) -> None:
    """Every organization the contract names is one of this hub's: an unknown one (a typo)
    would own nothing, or grant no one, without a word."""
    named = [
        ("owner", [contract.owner]),
        ("policy.experiment_orgs", contract.policy.experiment_orgs),
        ("policy.model_download_orgs", contract.policy.model_download_orgs),
    ]
    for field, orgs in named:
        unknown = [org for org in orgs if uow.orgs.get(org) is None]
        if unknown:
            listed = ", ".join(f'"{org}"' for org in unknown)
            ids = "that id" if len(unknown) == 1 else "those ids"
            raise InvalidInputError(
                f"{field} names {listed}: no organization of this hub has {ids} "
                "(`fedpark org list` shows them)",
                field=field,
            )


def _clear_decision(row: ContractVersion) -> None:
    """Forget an earlier review: its signature and who decided (the document changed, or is
    submitted again)."""
    row.signature_key = row.signature_sha256 = row.signature_version_id = None
    row.decided_by, row.decided_at = None, None


def _columns(contract: Contract) -> list[ContractColumnIndex]:
    return [
        ContractColumnIndex(
            contract_id=contract.id,
            version=contract.version,
            name=c.name,
            type=c.type,
            role=c.role.value,
        )
        for c in contract.columns
    ]
