"""Contracts as documents: YAML or JSON for people, canonical JSON for hashes and signatures."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fedpark.contracts.errors import ContractFormatError, ContractInvalidError
from fedpark.contracts.model import Contract

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_DOCUMENT_DEPTH = 64  # a contract nests a few levels (columns, rules, nested types)
MAX_DOCUMENT_ALIASES = 100
# libyaml's parser where PyYAML was built with it (its wheels are): ~10x the pure-Python one
# on a large contract or a JSON body. The objects are still built by PyYAML's safe
# constructor, so both loaders give the same data.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_document(text: str | bytes, source: str = "contract") -> Any:
    """Parse YAML or JSON (JSON is YAML) without executing anything (safe loader)."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise ContractFormatError(f"{source} is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        data = _read(text, source)
    except yaml.YAMLError as exc:
        raise ContractFormatError(f"{source} is not valid YAML or JSON{_where(exc)}") from None
    except RecursionError:  # a shape the event scan let through should still not crash
        raise ContractFormatError(f"{source} nests too deeply") from None
    except UnicodeError:  # text with a lone surrogate: no UTF-8 for the parser to read
        raise ContractFormatError(f"{source} is not valid UTF-8 text") from None
    except ValueError:  # PyYAML building a value: "\U00110000", a date like 2024-02-30
        raise ContractFormatError(
            f"{source} holds a value YAML cannot read: a date that does not exist or an "
            "escaped character outside Unicode (quote dates as text)"
        ) from None
    if not isinstance(data, dict):
        raise ContractFormatError(f"{source} must be a mapping at the top level")
    return data


def _read(text: str | bytes, source: str) -> Any:
    try:
        return _load(text, source, _LOADER)
    except (yaml.YAMLError, UnicodeError):
        if _LOADER is yaml.SafeLoader:
            raise
        # libyaml refuses some of what PyYAML reads (JSON's escaped surrogate pairs, as
        # json.dumps writes an emoji) and stops at its own limits (1000 levels) before these
        # checks: on this path only, PyYAML's Python parser reads the document, or names
        # its fault, exactly as it always did.
        return _load(text, source, yaml.SafeLoader)


def _load(text: str | bytes, source: str, loader: type[yaml.SafeLoader]) -> Any:
    _check_shape(text, source, loader)
    return yaml.load(text, Loader=loader)  # noqa: S506  # a safe loader, C or Python


def _where(exc: yaml.YAMLError) -> str:
    """Where the parser stopped and what to look at there (its own text quotes the line)."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return ""
    return (
        f" (line {mark.line + 1}, column {mark.column + 1}): check the indentation, the colons "
        "and the brackets there, and quote text that holds a colon"
    )


def _check_shape(text: str | bytes, source: str, loader: type[yaml.SafeLoader]) -> None:
    """Refuse, before building anything, documents nested deeper than a contract ever is or
    full of aliases (each alias re-expands a subtree: "billion laughs"). The event stream is
    read iteratively, so neither costs a recursion."""
    depth = aliases = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DOCUMENT_DEPTH:
                raise ContractFormatError(
                    f"{source} nests more than {MAX_DOCUMENT_DEPTH} levels deep: not a contract"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_DOCUMENT_ALIASES:
                raise ContractFormatError(
                    f"{source} uses more than {MAX_DOCUMENT_ALIASES} YAML aliases: write the "
                    "values out"
                )


def contract_from_data(data: Any, source: str = "contract") -> Contract:
    try:
        return Contract.model_validate(data)
    except ValidationError as exc:
        raise ContractInvalidError.from_pydantic(exc, source, data, Contract) from None


def load_contract(path: Path) -> Contract:
    """Read a contract from a YAML or JSON file."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ContractFormatError(f"cannot read {path}: {exc.strerror}") from None
    return contract_from_data(parse_document(text, str(path)), str(path))


def contract_to_data(contract: Contract) -> dict[str, Any]:
    """Plain JSON-able data with every field, defaults included."""
    return contract.model_dump(mode="json")


def _readable(data: dict[str, Any]) -> dict[str, Any]:
    """Drop unset rules and empty optional fields: a file for people to read and edit."""
    for column in data["columns"]:
        rules = column["rules"].items()
        column["rules"] = {k: v for k, v in rules if v is not None and v is not False}
        for key in ("unit", "description", "rules"):
            if column[key] in (None, "", {}):
                del column[key]
    data["rows"] = {k: v for k, v in data["rows"].items() if v is not None}
    if not data["rows"]:
        del data["rows"]
    return data


def dump_yaml(contract: Contract) -> str:
    """Readable YAML; loading it gives back the same contract (defaults fill the gaps)."""
    return yaml.safe_dump(
        _readable(contract_to_data(contract)), sort_keys=False, allow_unicode=True
    )


def canonical_json(contract: Contract) -> bytes:
    """The byte form that is hashed and signed: sorted keys, no spaces, UTF-8, all fields."""
    return json.dumps(
        contract_to_data(contract), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def contract_sha256(contract: Contract) -> str:
    return hashlib.sha256(canonical_json(contract)).hexdigest()


def save_contract(contract: Contract, path: Path) -> None:
    """Write YAML (``.yaml``/``.yml``) or canonical-looking JSON (anything else)."""
    if path.suffix.lower() in (".yaml", ".yml"):
        path.write_text(dump_yaml(contract))
    else:
        path.write_text(json.dumps(contract_to_data(contract), indent=2, ensure_ascii=False))
