"""Path parameters shared by the API and the console: one pattern per kind of id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from fedpark.contracts.model import SLUG

ContractId = Annotated[str, Path(max_length=63, pattern=SLUG)]
Version = Annotated[str, Path(max_length=64, pattern=r"^[0-9A-Za-z.+-]+$")]
ExperimentId = Annotated[str, Path(max_length=40, pattern=r"^exp-[0-9a-f]{12}$")]
