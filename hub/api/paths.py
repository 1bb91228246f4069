"""Path parameters shared by the API and the console: one pattern per kind of id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from fedpark.contracts.names import SLUG
from fedpark.contracts.ref import ContractRef

ContractId = Annotated[str, Path(max_length=63, pattern=SLUG)]
Version = Annotated[str, Path(max_length=64, pattern=r"^[0-9A-Za-z.+-]+$")]
ExperimentId = Annotated[str, Path(max_length=40, pattern=r"^exp-[0-9a-f]{12}$")]


def contract_version(contract_id: ContractId, version: Version) -> ContractRef:
    """The contract version a ``/contracts/{contract_id}/versions/{version}`` path names."""
    return ContractRef(contract_id, version)


VersionRef = Annotated[ContractRef, Depends(contract_version)]
