"""Model folders: what ``fedpark model download`` writes, and what ``finetune`` writes.

A federated model's folder holds the weights, the hub's manifest and its signature, and the
hub's public key pinned at download::

    model.safetensors  manifest.json  manifest.sig.json  hub-key.pem

A fine-tuned model's folder holds its own weights and a local manifest naming its parent,
and the parent's signed manifest, so the architecture, feature plan and contract it runs
with are still the ones the hub signed::

    model.safetensors  manifest.json  parent/manifest.json  parent/manifest.sig.json
    hub-key.pem

Its weights are the factory's own: their sha256 is checked against the local manifest, but
no hub signed them (the hub never saw them).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from fedpark.contracts import Contract
from fedpark.contracts.errors import ContractError
from fedpark.experiments.protocol.base import Wire
from fedpark.experiments.protocol.manifest import ManifestWeights, ModelManifest
from fedpark.experiments.protocol.package import ModelPackage

WEIGHTS = "model.safetensors"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig.json"
KEY = "hub-key.pem"
PARENT = "parent"
LOCAL_FORMAT = "fedpark-local-model/v1"


class ModelFolderError(Exception):
    """A folder that is not a usable model: a file missing or altered, a foreign signature,
    a model sealed before models carried their package. The message is FedPark's own."""


class UnusableFolderError(ModelFolderError):
    """Not a model folder at all, or a file of it missing or unreadable (not a verdict on
    its contents)."""


class LocalParent(Wire):
    experiment_id: str
    weights_sha256: str
    manifest_sha256: str


class LocalData(Wire):
    source: str = Field(description="The data file's name (not its path)")
    train_rows: int
    held_out_rows: int


class LocalManifest(Wire):
    """A fine-tuned model's manifest: its parent, its data, and what fine-tuning changed."""

    format: Literal["fedpark-local-model/v1"] = "fedpark-local-model/v1"
    parent: LocalParent
    weights: ManifestWeights
    package: ModelPackage
    data: LocalData
    epochs: int
    learning_rate: float
    before: dict[str, float] = Field(description="The parent's metrics on the held-out rows")
    after: dict[str, float] = Field(description="This model's metrics on the same rows")
    fedpark_version: str
    created_at: str


@dataclass(frozen=True)
class ModelFolder:
    """A verified model, ready to run."""

    path: Path
    package: ModelPackage
    weights: bytes
    manifest: ModelManifest  # the hub-signed one (the parent's, for a fine-tuned model)
    key_id: str  # the hub key that signed it
    local: LocalManifest | None = None

    @property
    def contract(self) -> Contract:
        return Contract.model_validate(self.package.contract)

    @property
    def weights_sha256(self) -> str:
        return hashlib.sha256(self.weights).hexdigest()

    @property
    def signed_dir(self) -> Path:
        """The folder holding the hub-signed manifest: the model's, or its parent's copy for
        a fine-tuned one."""
        return self.path / PARENT if self.local else self.path

    @property
    def manifest_sha256(self) -> str:
        """The sha256 of the hub-signed manifest file, as ``sha256sum`` gives it."""
        return hashlib.sha256((self.signed_dir / MANIFEST).read_bytes()).hexdigest()

    @property
    def name(self) -> str:
        base = self.manifest.experiment.id
        return f"{base} (fine-tuned)" if self.local else base


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UnusableFolderError(f"{path.name} is missing from {path.parent}") from None
    except OSError:
        raise UnusableFolderError(f"cannot read {path}") from None


def open_model(folder: Path, key: Path | None = None) -> ModelFolder:
    """Open and verify a model folder offline.

    ``key`` is the hub's public key to trust (default: the one pinned in the folder).
    Raises :class:`ModelFolderError` saying what is wrong.
    """
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a model folder (a directory)"
        raise UnusableFolderError(f"{folder} {what}")
    manifest_bytes = _read(folder / MANIFEST)
    facts = _json(manifest_bytes, MANIFEST)
    pinned = _read(key or folder / KEY)
    if isinstance(facts, dict) and facts.get("format") == LOCAL_FORMAT:
        return _open_local(folder, manifest_bytes, pinned)
    weights = _read(folder / WEIGHTS)
    signed, key_id = _verified(manifest_bytes, _read(folder / SIGNATURE), pinned, weights)
    return ModelFolder(folder, signed.package, weights, signed, key_id)


def _open_local(folder: Path, raw: bytes, pinned: bytes) -> ModelFolder:
    try:
        local = LocalManifest.model_validate_json(raw)
    except ValidationError:
        raise ModelFolderError(f"{MANIFEST} is not a fine-tuned model's manifest") from None
    parent_bytes = _read(folder / PARENT / MANIFEST)
    parent, key_id = _verified(parent_bytes, _read(folder / PARENT / SIGNATURE), pinned, None)
    if hashlib.sha256(parent_bytes).hexdigest() != local.parent.manifest_sha256:
        raise ModelFolderError("the parent's manifest is not the one this model names")
    if local.package != parent.package and not _localized(local.package, parent.package):
        raise ModelFolderError("the model's package differs from its parent's signed one")
    weights = _read(folder / WEIGHTS)
    if hashlib.sha256(weights).hexdigest() != local.weights.sha256:
        raise ModelFolderError(f"{WEIGHTS} differs from the one its manifest names (sha256)")
    return ModelFolder(folder, local.package, weights, parent, key_id, local)


def _localized(local: ModelPackage, parent: ModelPackage) -> bool:
    """``local`` is the signed ``parent`` with one plant's own statistics, the only change
    fine-tuning may make to a package (for a model trained with ``normalization: factory``)."""
    if parent.architecture.normalization != "factory" or local.features.reference is None:
        return False
    norm, numeric = local.features.normalization, set(local.features.numeric)
    if set(norm.mean) != numeric or set(norm.std) != numeric:
        return False
    if not all(math.isfinite(norm.mean[c]) and norm.std[c] > 0 for c in numeric):
        return False  # a spread of 0 or a non-finite statistic is no plant's
    features = local.features.model_copy(
        update={
            "normalization": parent.features.normalization,
            "reference": parent.features.reference,
        }
    )
    return local.model_copy(update={"features": features}) == parent


def _verified(
    manifest: bytes, signature: bytes, pinned: bytes, weights: bytes | None
) -> tuple[ModelManifest, str]:
    from fedpark.contracts.signing import load_public_key
    from fedpark.experiments.protocol.manifest import verify_manifest, verify_model

    document = _json(signature, SIGNATURE)
    try:
        key = load_public_key(pinned)
        if weights is None:
            verify_manifest(manifest, document, key)
        else:
            verify_model(weights, manifest, document, key)
    except ContractError as exc:  # SignatureError: FedPark's own words
        raise ModelFolderError(f"not verified: {exc}") from None
    facts = _json(manifest, MANIFEST)
    if not isinstance(facts, dict) or "package" not in facts:
        raise ModelFolderError(
            "this model was sealed by a FedPark without model packages: it can be verified "
            "but not run (train it again to get a runnable package)"
        )
    try:
        parsed = ModelManifest.model_validate(facts)
    except ValidationError:
        raise ModelFolderError(f"{MANIFEST} is not a model manifest FedPark can read") from None
    return parsed, str(document.get("key_id", "unknown"))


def _json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise ModelFolderError(f"{name} is not JSON") from None
