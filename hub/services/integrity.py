"""Are the stored objects the catalog pins still there, and still the bytes it recorded?

Every object the catalog points at (contract documents, schemas and signatures; round
checkpoints; models, their manifests and signatures) is read back in full and hashed. What is
missing or damaged is reported; nothing is changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from fedpark.hub.errors import IntegrityError, ObjectNotFoundError
from fedpark.hub.storage import Storage


@dataclass(frozen=True)
class PinnedObject:
    """One object the catalog records: what it is, where, and the sha256 it must have."""

    what: str
    bucket: str
    key: str
    sha256: str
    version_id: str | None


@dataclass
class IntegrityReport:
    checked: int = 0
    bytes: int = 0
    missing: list[PinnedObject] = field(default_factory=list)
    damaged: list[PinnedObject] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.damaged


def pinned_objects(storage: Storage) -> Iterator[PinnedObject]:
    contracts, models = storage.buckets["contracts"], storage.buckets["models"]
    with storage.unit_of_work() as uow:
        versions = uow.contracts.all()
        rounds = uow.experiments.all_rounds()
        trained = uow.experiments.all_models()
    for v in versions:
        name = f"contract {v.contract_id} {v.version}"
        yield PinnedObject(
            f"{name} document", contracts, v.document_key, v.document_sha256, v.document_version_id
        )
        yield PinnedObject(
            f"{name} schema", contracts, v.schema_key, v.schema_sha256, v.schema_version_id
        )
        if v.signature_key and v.signature_sha256:
            yield PinnedObject(
                f"{name} signature",
                contracts,
                v.signature_key,
                v.signature_sha256,
                v.signature_version_id,
            )
    for r in rounds:
        if r.checkpoint_key and r.checkpoint_sha256:
            yield PinnedObject(
                f"experiment {r.experiment_id} round {r.round} checkpoint",
                models,
                r.checkpoint_key,
                r.checkpoint_sha256,
                r.checkpoint_version_id,
            )
    for m in trained:
        name = f"experiment {m.experiment_id}"
        yield PinnedObject(
            f"{name} model weights", models, m.weights_key, m.weights_sha256, m.weights_version_id
        )
        yield PinnedObject(
            f"{name} manifest", models, m.manifest_key, m.manifest_sha256, m.manifest_version_id
        )
        yield PinnedObject(
            f"{name} manifest signature",
            models,
            m.signature_key,
            m.signature_sha256,
            m.signature_version_id,
        )


def check_stored_objects(storage: Storage) -> IntegrityReport:
    """Read back and hash every pinned object (storage outages raise: they are not findings)."""
    report = IntegrityReport()
    for pinned in pinned_objects(storage):
        report.checked += 1
        try:
            for chunk in storage.objects.iter_chunks(
                pinned.bucket, pinned.key, sha256=pinned.sha256, version_id=pinned.version_id
            ):
                report.bytes += len(chunk)
        except ObjectNotFoundError:
            report.missing.append(pinned)
        except IntegrityError:
            report.damaged.append(pinned)
    return report
