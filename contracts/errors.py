"""Contract errors::

ContractError
├── ContractFormatError        not YAML/JSON, too large, unreadable file
├── ContractInvalidError       parsed, but breaks the contract model (names the fields)
├── SignatureError             a signature that does not verify
└── DataError                  data that cannot be read or checked at all
    ├── UnreadableDataError    truncated, garbage or wrong-format files
    └── UnsupportedDataError   a format or type the validator cannot check
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


class ContractError(Exception):
    """Base class; messages are meant for a person and never contain data values."""


class ContractFormatError(ContractError):
    pass


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


class ContractInvalidError(ContractError):
    def __init__(self, problems: list[FieldProblem], source: str = "contract") -> None:
        self.problems = problems
        first = problems[0] if problems else FieldProblem("", "invalid")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{source}: {first.field}: {first.message}{more}")

    @classmethod
    def from_pydantic(cls, exc: ValidationError, source: str = "contract") -> ContractInvalidError:
        problems = [
            FieldProblem(".".join(str(p) for p in e["loc"]) or "(document)", _message(e["msg"]))
            for e in exc.errors()
        ]
        return cls(problems, source)


def _message(msg: str) -> str:
    return msg.removeprefix("Value error, ")


class SignatureError(ContractError):
    pass


class DataError(ContractError):
    pass


class UnreadableDataError(DataError):
    pass


class UnsupportedDataError(DataError):
    pass
