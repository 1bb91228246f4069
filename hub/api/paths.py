"""Path parameters shared by the API and the console: one pattern per kind of id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

ContractId = Annotated[str, Path(max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")]
Version = Annotated[str, Path(max_length=64, pattern=r"^[0-9A-Za-z.+-]+$")]
ExperimentId = Annotated[str, Path(max_length=40, pattern=r"^exp-[0-9a-f]{12}$")]
