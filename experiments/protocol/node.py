"""What a factory's SuperNode hands its ClientApp, and what the ClientApp tells the factory.

``fedpark factory join`` starts the SuperNode with a :class:`NodeConfig` (Flower's
``--node-config``); every ClientApp of every run reads it back from ``context.node_config``.
The ClientApp notes what it did as :class:`FactoryEvent` lines in the work dir's
:data:`EVENTS_FILE`, which ``factory join`` prints for the factory's operator. Neither leaves
the factory.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from fedpark.contracts.dialect import CsvOptions
from fedpark.experiments.protocol.base import Wire

EVENTS_FILE = "events.jsonl"
# The model a factory trained on its rows alone for a run's gain table: it stays in the work
# dir (never sent), for the factory to compare the federated model with.
ALONE_MODEL = "alone-{run}.safetensors"


class NodeConfig(BaseModel):
    """A factory's settings for its ClientApps (Flower's node config, dashed keys).

    Either ``contract_dir`` (a contract verified offline: runs without a hub) or ``hub_url``
    with ``token_file`` and ``hub_key`` (contracts fetched from the hub and verified with the
    key pinned when the factory joined).
    """

    # Flower adds keys of its own (``partition-id`` in a simulation): they are not ours.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    data_path: Path = Field(alias="data-path", description="The factory's data file")
    org: str = Field(default="unknown", description="The factory's organization id")
    work_dir: Path | None = Field(
        default=None, alias="work-dir", description="Caches and events; default: beside the data"
    )
    contract_dir: Path | None = Field(default=None, alias="contract-dir")
    hub_url: str | None = Field(default=None, alias="hub-url")
    token_file: Path | None = Field(
        default=None, alias="token-file", description="A file, so the token is not in `ps`"
    )
    hub_key: Path | None = Field(default=None, alias="hub-key", description="The pinned key")
    # A CSV dialect forced at `factory join` (--delimiter, --decimal, --encoding), by name
    # (semicolon, comma, cp1252): the ClientApp reads the file as the command line did.
    csv_delimiter: str | None = Field(default=None, alias="csv-delimiter")
    csv_decimal: str | None = Field(default=None, alias="csv-decimal")
    csv_encoding: str | None = Field(default=None, alias="csv-encoding")

    @field_validator("csv_delimiter", "csv_decimal", "csv_encoding")
    @classmethod
    def _known_dialect(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:  # raises DialectOptionError, a ValueError in FedPark's words
            CsvOptions.parse(**{str(info.field_name).removeprefix("csv_"): value})
        return value

    @classmethod
    def csv_fields(cls, options: CsvOptions) -> dict[str, str]:
        """``options`` as this config's fields (``csv_delimiter="semicolon"``, ...)."""
        return {f"csv_{key}": value for key, value in options.names().items()}

    @property
    def csv_options(self) -> CsvOptions:
        return CsvOptions.parse(self.csv_delimiter, self.csv_decimal, self.csv_encoding)

    @classmethod
    def of(cls, config: Mapping[str, object]) -> Self:
        """Read Flower's ``context.node_config``."""
        return cls.model_validate({key: str(value) for key, value in config.items()})

    def flower(self) -> dict[str, str]:
        """As Flower's ``--node-config`` takes it."""
        values = self.model_dump(by_alias=True, exclude_none=True)
        return {key: str(value) for key, value in values.items()}

    @property
    def work_folder(self) -> Path:
        return self.work_dir or self.data_path.parent / ".fedpark"


class EventKind(StrEnum):
    TRAINED = "trained"
    REFUSED = "refused"
    FAILED = "failed"
    SKIPPED = "skipped"  # a run the factory was not invited to


class FactoryEvent(Wire):
    """One thing a ClientApp did, in FedPark's words (counts and rule names, never a value)."""

    at: float = Field(default_factory=time.time)
    run: int
    event: EventKind
    round: int | None = None
    rows: int | None = None
    reason: str | None = None

    def describe(self) -> str:
        run = f"run {self.run}"
        if self.event is EventKind.TRAINED:
            return f"{run}, round {self.round}: trained on {self.rows} rows"
        if self.event is EventKind.REFUSED:
            return f"{run}: refused: {self.reason}"
        if self.event is EventKind.SKIPPED:
            return f"{run}: not a participant of that experiment: skipped"
        return f"{run}: the client failed: {self.reason} (see supernode.log)"
