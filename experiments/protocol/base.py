"""The base of every protocol model: unknown fields are refused (a peer cannot smuggle data
in a field nobody reads), and values are frozen once parsed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# The most factories one experiment may invite, require (k) and report on: the bound of
# every list of factories that crosses a process boundary (a park of 350+ companies fits).
MAX_FACTORIES = 1000


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
