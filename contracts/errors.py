"""Contract errors::

ContractError
├── ContractFormatError        not YAML/JSON, too large, unreadable file
├── ContractInvalidError       parsed, but breaks the contract model (names the fields)
├── SignatureError             a signature that does not verify
└── DataError                  data that cannot be read or checked at all
    ├── UnreadableDataError    truncated, garbage or wrong-format files
    │   └── CsvValueError      (reader) a CSV cell that does not parse as its contract type
    └── UnsupportedDataError   a format or type the validator cannot check

A ``DataError`` carries a :class:`ReadFailure`: what went wrong in FedPark's own words (a
problem kind, a line number, a contract column, counts), never the text of the reader's
exception. Arrow, like most readers, quotes the offending row in its messages; a
``ReadFailure`` has no field that could hold it, so a factory may send one anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fedpark.contracts.messages import problems


class ContractError(Exception):
    """Base class; messages are meant for a person and never contain data values."""


class ContractFormatError(ContractError):
    pass


MAX_PROBLEMS_SHOWN = 20


@dataclass(frozen=True)
class FieldProblem:
    """``field``: the dotted path (``columns.3.type``); ``where``: it in words
    (``column "temp" (4th): type``), empty to show the path."""

    field: str
    message: str
    where: str = ""

    def __str__(self) -> str:
        return f"{self.where or self.field}: {self.message}"


class ContractInvalidError(ContractError):
    """Every problem of the document (the first :data:`MAX_PROBLEMS_SHOWN` in the message),
    the likely typos first: an unknown key often explains a missing field next to it."""

    def __init__(self, problems: list[FieldProblem], source: str = "contract") -> None:
        self.problems = problems or [FieldProblem("(document)", "invalid")]
        shown = [str(p) for p in self.problems[:MAX_PROBLEMS_SHOWN]]
        if len(shown) == 1:
            text = f"{source}: {shown[0]}"
        else:
            text = f"{source} has {len(self.problems)} problems:" + "".join(
                f"\n  - {line}" for line in shown
            )
        if len(self.problems) > MAX_PROBLEMS_SHOWN:
            text += f"\n  ... and {len(self.problems) - MAX_PROBLEMS_SHOWN} more of the same kinds"
        super().__init__(text)

    @classmethod
    def from_pydantic(
        cls,
        exc: ValidationError,
        source: str = "contract",
        data: Any = None,
        model: type[BaseModel] | None = None,
    ) -> ContractInvalidError:
        """``data``: what was validated (names columns by their name); ``model``: what it
        was validated as (suggests the key an unknown one was meant to be)."""
        found = problems(exc.errors(), data, model)
        return cls([FieldProblem(p.field, p.message, p.where) for p in found], source)


class SignatureError(ContractError):
    pass


class ReadProblem(StrEnum):
    """Why a data file could not be read (or checked) at all."""

    CANNOT_OPEN = "cannot-open"
    EMPTY = "empty"
    UNKNOWN_FORMAT = "unknown-format"
    NOT_PARQUET = "not-parquet"
    ENCRYPTED_PARQUET = "encrypted-parquet"
    NOT_IPC = "not-ipc"
    TRUNCATED = "truncated-or-corrupted"
    CORRUPT_PAGE = "corrupt-page"
    CSV_FIELD_COUNT = "csv-field-count"
    CSV_VALUE = "csv-value"
    CSV_ENCODING = "csv-encoding"
    CSV_UNKNOWN_ENCODING = "csv-unknown-encoding"
    CSV_LINE_TOO_LONG = "csv-line-too-long"
    UNSUPPORTED_TYPE = "unsupported-type"


_WORDS = {
    ReadProblem.CANNOT_OPEN: "cannot be opened (missing, or no permission to read it)",
    ReadProblem.EMPTY: "is empty",
    ReadProblem.UNKNOWN_FORMAT: "is in an unknown format; use Parquet, Arrow IPC/Feather or "
    "CSV (.csv, .tsv)",
    ReadProblem.NOT_PARQUET: "is not a Parquet file (no PAR1 magic bytes)",
    ReadProblem.ENCRYPTED_PARQUET: "is encrypted Parquet: FedPark cannot read encrypted files; "
    "decrypt it first",
    ReadProblem.NOT_IPC: "is not an Arrow IPC/Feather file",
    ReadProblem.TRUNCATED: "is truncated or corrupted",
    ReadProblem.CORRUPT_PAGE: "has a damaged page (its checksum does not match): corrupted",
    ReadProblem.CSV_FIELD_COUNT: "has a line with a different number of fields than its header",
    ReadProblem.CSV_VALUE: "has a cell that does not parse as its column's contract type",
    ReadProblem.CSV_ENCODING: "has text that is not valid UTF-8 among text that is (a "
    "damaged file, or two encodings mixed); if it is not UTF-8, name its encoding with "
    "--encoding",
    ReadProblem.CSV_UNKNOWN_ENCODING: "has text in none of the encodings tried (UTF-8, cp949, "
    "cp1252); name its encoding with --encoding",
    ReadProblem.CSV_LINE_TOO_LONG: "has a line too long to read (more than 8 MiB)",
    ReadProblem.UNSUPPORTED_TYPE: "holds a column type FedPark cannot check",
}


class ReadFailure(BaseModel):
    """What kept a file from being read, built by FedPark from what it computed itself.

    Every field is a kind, a number or a name from the contract: nothing read from the
    file's rows can be put here, so a failure may leave a factory (in a refusal) as is.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    problem: ReadProblem
    line: int | None = Field(
        default=None, ge=1, description="CSV: the file's line (the header is line 1)"
    )
    column: str | None = Field(
        default=None, max_length=200, description="The contract's column to blame"
    )
    column_type: str | None = Field(
        default=None, max_length=200, description="The contract type a CSV cell missed"
    )
    expected_fields: int | None = Field(default=None, ge=0, description="CSV: the header's")
    found_fields: int | None = Field(default=None, ge=0, description="CSV: the line's")
    encoding: str | None = Field(
        default=None, max_length=40, description="CSV: the encoding read with, if not UTF-8"
    )

    def describe(self) -> str:
        """The failure in one sentence (subject: the file)."""
        if self.problem is ReadProblem.CSV_FIELD_COUNT and self.found_fields is not None:
            where = f"line {self.line}" if self.line else "a line"
            return (
                f"has {self.found_fields} fields on {where} where the header has "
                f"{self.expected_fields}"
            )
        if self.problem is ReadProblem.CSV_VALUE and self.column:
            return f"column {self.column!r} holds values that are not {self.column_type}"
        if self.problem is ReadProblem.CSV_ENCODING and (self.column or self.encoding):
            encoding = self.encoding or "UTF-8"
            where = f"column {self.column!r} holds" if self.column else "has"
            return f"{where} text that is not valid {encoding}"
        return _WORDS[self.problem]


class DataError(ContractError):
    """Data that cannot be read or checked; ``failure`` says why in FedPark's words."""

    def __init__(self, failure: ReadFailure | ReadProblem, file: str = "the data file") -> None:
        if isinstance(failure, ReadProblem):
            failure = ReadFailure(problem=failure)
        self.failure, self.file = failure, file
        super().__init__(f"{file} {failure.describe()}")


class UnreadableDataError(DataError):
    pass


class UnsupportedDataError(DataError):
    pass
