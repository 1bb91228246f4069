"""A factory's copy of approved contracts: fetched once from the hub, trusted only when the
hub's signature verifies with the key the factory pinned when it joined.

Used by the ClientApp before every round and by ``fedpark factory join`` at start; no torch,
no Flower here.
"""

from __future__ import annotations

import json
from pathlib import Path

from fedpark.contracts import Contract
from fedpark.contracts.errors import ContractError
from fedpark.contracts.ref import ContractRef
from fedpark.contracts.signing import load_public_key, verify_contract
from fedpark.experiments.protocol.client import HubClient
from fedpark.experiments.protocol.errors import HubApiError, HubError

PARTS = (("contract.json", "document"), ("signature.json", "signature"))


class ContractUnavailableError(Exception):
    """The hub could not be reached, or did not hand out the contract (``status``)."""

    def __init__(self, status: int | None = None) -> None:
        self.status = status
        super().__init__(
            "the hub was unreachable" if status is None else f"the hub answered {status}"
        )


class ContractNotVerifiedError(Exception):
    """The contract files do not carry a valid signature of the pinned hub key."""


def cache_folder(work_dir: Path, ref: ContractRef) -> Path:
    return work_dir / "contracts" / ref.object_prefix


def verified_contract(folder: Path, key_file: Path | None = None) -> Contract:
    """The contract in ``folder`` (as ``fedpark contract download`` writes it), if the hub's
    signature verifies with ``key_file`` (default: the folder's ``hub-key.pem``)."""
    try:
        contract = Contract.model_validate(json.loads((folder / "contract.json").read_text()))
        signature = json.loads((folder / "signature.json").read_text())
        key = load_public_key((key_file or folder / "hub-key.pem").read_bytes())
        verify_contract(contract, signature, key)
    except (OSError, ValueError, ContractError):
        raise ContractNotVerifiedError("the contract's signature does not verify") from None
    return contract


def fetch_verified(api: HubClient, ref: ContractRef, work_dir: Path, key_file: Path) -> Contract:
    """The approved version ``ref``, fetched once into the work dir's cache.

    Raises
    ------
    ContractUnavailableError
        The hub is unreachable or refuses the download (a file is never half-written).
    ContractNotVerifiedError
        The hub's signature does not verify with the pinned key.
    """
    folder = cache_folder(work_dir, ref)
    if not (folder / "signature.json").exists():
        try:
            parts = {name: api.contract_part(ref, part) for name, part in PARTS}
        except HubApiError as exc:
            raise ContractUnavailableError(exc.status) from None
        except HubError:
            raise ContractUnavailableError() from None
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in parts.items():  # the signature last: its presence means complete
            temporary = folder / f".{name}.part"
            temporary.write_bytes(data)
            temporary.replace(folder / name)
    return verified_contract(folder, key_file)
