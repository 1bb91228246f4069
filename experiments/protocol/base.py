"""The base of every protocol model: unknown fields are refused (a peer cannot smuggle data
in a field nobody reads), and values are frozen once parsed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
