"""Draft a contract from data files: types from the files, rules suggested from statistics.

Several files (every plant's, or a folder of them) make a better draft than one: allowed
values and ranges cover every plant, and a column that tells the files apart becomes an
``id`` column instead of a feature that only one plant's value may have (see
:mod:`fedpark.contracts.roles`). The draft is a starting point for a person: ranges get a
margin, rare categories are not turned into allowed values, units are unknown, and each
guess is explained in the YAML's comments (:mod:`fedpark.contracts.draft`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

import pyarrow as pa
from pydantic import ValidationError

from fedpark.contracts.bounds import suggest_range
from fedpark.contracts.dialect import CsvDialect, CsvOptions
from fedpark.contracts.errors import ContractError, ContractInvalidError
from fedpark.contracts.model import Column, ColumnRole, Contract
from fedpark.contracts.reader import open_source
from fedpark.contracts.roles import Evidence, Guess, guess, guess_role
from fedpark.contracts.types import TypeSpecError, format_type, value_type
from fedpark.contracts.validate import is_widening, validate_source

MAX_ALLOWED_VALUES = 20
MAX_NAME = 200  # a contract column name's length (Column.name)
DATA_SUFFIXES = frozenset(
    {".parquet", ".pq", ".arrow", ".feather", ".ipc", ".arrows", ".csv", ".tsv"}
)


class InferError(ContractError):
    """Files a draft cannot be made from; the message names the file and what is wrong."""


@dataclass
class InferredFile:
    name: str  # as shown: relative to the files' common folder
    rows: int
    dialect: CsvDialect | None


@dataclass
class Draft:
    """A drafted contract, what it was drafted from, and a note per column on its guesses."""

    contract: Contract
    files: list[InferredFile]
    notes: dict[str, list[str]] = field(default_factory=dict)
    ranges: bool = True


def data_files(paths: Sequence[Path]) -> list[Path]:
    """The files ``paths`` name: files as given, folders as every data file in them (by
    suffix, sorted, hidden folders such as a factory's ``.fedpark`` left out)."""
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in DATA_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not found:
            raise InferError(f"{path} holds no data file (Parquet, Arrow IPC/Feather or CSV)")
        files += found
    if not files:
        raise InferError("no data file given")
    return list(dict.fromkeys(files))


def _shown(files: list[Path]) -> list[str]:
    """Names that tell the files apart: paths under their common folder."""
    if len(files) == 1:
        return [files[0].name]
    resolved = [f.resolve() for f in files]
    common = Path(os.path.commonpath([f.parent for f in resolved]))
    return [str(f.relative_to(common)) for f in resolved]


def _type_name(dtype: pa.DataType) -> str:
    try:
        return format_type(dtype)
    except ValueError:
        return str(dtype)


def _join(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """One type for a column typed ``a`` in one file and ``b`` in another, if any."""
    if a == b or pa.types.is_null(b):
        return a
    if pa.types.is_null(a) or is_widening(a, b):
        return b
    if is_widening(b, a):
        return a
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if any(f(a) for f in numeric) and any(f(b) for f in numeric):
        return pa.float64()  # a CSV column of whole numbers in one file, decimals in another
    return None


def _check_names(schema: pa.Schema, name: str) -> None:
    seen: set[str] = set()
    for number, column in enumerate(schema.names, start=1):
        where = f"{name}: column #{number}"
        if not column:
            raise InferError(f"{where} has no name; name it in the file")
        if len(column) > MAX_NAME:
            raise InferError(
                f"{where}'s name is {len(column)} characters long, more than a contract's "
                f"{MAX_NAME}; if the file is a CSV whose header was read as one column, name "
                "its delimiter with --delimiter"
            )
        if column in seen:
            raise InferError(f"{where} has the name of an earlier column ({column!r})")
        seen.add(column)


def _unified(paths: list[Path], names: list[str], csv: CsvOptions | None) -> pa.Schema:
    """The files' common schema: the same columns, types that one type can hold."""
    first = open_source(paths[0], csv_options=csv).schema
    _check_names(first, names[0])
    types = {f.name: f.type for f in first}
    for path, name in zip(paths[1:], names[1:], strict=True):
        schema = open_source(path, csv_options=csv).schema
        _check_names(schema, name)
        lacks = [c for c in types if c not in schema.names]
        extra = [c for c in schema.names if c not in types]
        if lacks or extra:
            raise InferError(_differs(name, names[0], lacks, extra))
        for f in schema:
            joined = _join(types[f.name], f.type)
            if joined is None:
                raise InferError(
                    f"{name} does not have the columns of {names[0]}: column {f.name!r} is "
                    f"{_type_name(f.type)} there, {_type_name(types[f.name])} in {names[0]}"
                )
            types[f.name] = joined
    return pa.schema([(k, pa.string() if pa.types.is_null(v) else v) for k, v in types.items()])


def _differs(name: str, first: str, lacks: list[str], extra: list[str]) -> str:
    def listed(columns: list[str]) -> str:
        more = f" and {len(columns) - 3} more" if len(columns) > 3 else ""
        return ", ".join(repr(c[:60]) for c in columns[:3]) + more

    parts = [f"lacks {listed(lacks)}" if lacks else "", f"has {listed(extra)}" if extra else ""]
    return (
        f"{name} does not have the columns of {first}: it "
        + " and ".join(p for p in parts if p)
        + (f" ({first} has not)" if extra and not lacks else "")
        + "; infer from files that share their columns"
    )


def _rules(evidence: Evidence, guessed: Guess, ranges: bool, notes: list[str]) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    dtype = value_type(evidence.dtype)
    if guessed.role in (ColumnRole.ID, ColumnRole.PII):
        if evidence.null_fraction > 0:
            rules["max_null_fraction"] = _null_bound(evidence)
        return rules
    if pa.types.is_floating(dtype) and evidence.count and evidence.non_finite == 0:
        rules["finite"] = True
    if evidence.null_fraction > 0:
        rules["max_null_fraction"] = _null_bound(evidence)
    if evidence.rows and evidence.nulls == evidence.rows:
        notes.append(
            f"every value is empty in {_files(len(evidence.per_file))}: its type "
            f"({format_type(evidence.dtype)}) is a guess; set the type it will hold"
        )
    categories = evidence.categories
    stringy = pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
    # A label of a few integer codes (fault 0..5) is a set of classes, not a range: a code
    # between two seen ones is not a class the files hold.
    codes = pa.types.is_integer(dtype) and guessed.role is ColumnRole.LABEL
    if categories and (stringy or codes) and guessed.allowed_values:
        files = len(evidence.per_file)
        if len(categories) == 1:
            where = "the one file" if files == 1 else f"all {files} files"
            notes.append(
                f"one value in {where}: allowed_values left out (list the values a plant may "
                "have, or infer from more files)"
            )
        elif len(categories) <= MAX_ALLOWED_VALUES:
            rules["allowed_values"] = (
                sorted(int(c) for c in categories) if codes else sorted(categories)
            )
            notes.append(f"allowed_values: the {len(categories)} values seen in {_files(files)}")
        else:
            notes.append(f"more than {MAX_ALLOWED_VALUES} values: no allowed_values")
    # A range on top of a label's codes would say nothing more.
    if guessed.role is not ColumnRole.TIME and ranges and not (codes and "allowed_values" in rules):
        rules.update(suggest_range(evidence, notes))
    return rules


def _files(count: int) -> str:
    return "the file" if count == 1 else f"the {count} files"


def _null_bound(evidence: Evidence) -> float:
    return round(min(1.0, evidence.worst_null_fraction * 1.5 + 0.01), 4)


class InferOptions(TypedDict, total=False):
    title: str | None  # default: the first file's name
    version: str  # default: 0.1.0
    ranges: bool  # suggest min/max (default), or leave them to the steward
    csv_options: CsvOptions | None  # a CSV dialect forced


def infer_draft(
    paths: Sequence[Path], *, contract_id: str, owner: str, **options: Unpack[InferOptions]
) -> Draft:
    """Read ``paths`` (files or folders; each file twice, streaming) and draft a contract
    that every one of them meets.

    Raises
    ------
    InferError
        The files do not share their columns, or a column name cannot be a contract's.
    DataError
        A file cannot be read.
    """
    csv_options = options.get("csv_options")
    files = data_files(paths)
    names = _shown(files)
    schema = _unified(files, names, csv_options)
    columns = []
    for f in schema:
        # A label by its name is profiled as one: its integer codes are counted as classes.
        named = guess_role(f.name, f.type)
        role = ColumnRole.LABEL if named is ColumnRole.LABEL else ColumnRole.FEATURE
        try:
            columns.append(Column(name=f.name, type=format_type(f.type), role=role))
        except TypeSpecError as exc:  # FedPark's words: the column's name and its type
            raise InferError(f"column {f.name!r}: {exc}") from None
        except ValidationError:
            raise InferError(f"column {f.name!r}: a contract cannot hold its type") from None
    try:
        provisional = Contract(
            id=contract_id,
            version=options.get("version", "0.1.0"),
            title=options.get("title") or files[0].stem,
            owner=owner,
            columns=columns,
        )
    except ValidationError as exc:
        raise ContractInvalidError.from_pydantic(exc, "the draft") from None
    evidence = {f.name: Evidence(f.name, f.type) for f in schema}
    inferred = []
    types = {f.name: f.type for f in schema}
    for path, name in zip(files, names, strict=True):
        source = open_source(path, csv_types=types, csv_options=csv_options)
        result = validate_source(provisional, source, min_category_count=1)
        for column in result.profile.columns:
            evidence[column.name].add(column, result.profile.rows)
        inferred.append(InferredFile(name, result.profile.rows, source.dialect))
    return _draft(provisional, evidence, inferred, options.get("ranges", True))


def _draft(
    provisional: Contract, evidence: dict[str, Evidence], files: list[InferredFile], ranges: bool
) -> Draft:
    final, notes = [], {}
    for column in provisional.columns:
        seen = evidence[column.name]
        guessed = guess(seen)
        column_notes = [f"role {guessed.role.value}: {guessed.why}"] if guessed.why else []
        rules = _rules(seen, guessed, ranges, column_notes)
        final.append(
            {
                "name": column.name,
                "type": column.type,
                "nullable": seen.null_fraction > 0,
                "role": guessed.role.value,
                "rules": rules,
            }
        )
        notes[column.name] = column_notes
    data = provisional.model_dump(mode="json")
    data["columns"] = final
    rows = sum(f.rows for f in files)
    what = files[0].name if len(files) == 1 else f"{len(files)} files"
    data["description"] = (
        f"Drafted by `fedpark contract infer` from {what} ({rows} rows). Review the roles "
        "(id and pii columns never reach a model), units and rules."
    )
    try:
        contract = Contract.model_validate(data)
    except ValidationError as exc:
        raise ContractInvalidError.from_pydantic(exc, "the draft", data) from None
    return Draft(contract, files, notes, ranges)


def infer_contract(
    path: Path | Sequence[Path], *, contract_id: str, owner: str, **options: Unpack[InferOptions]
) -> Contract:
    """The contract of :func:`infer_draft` (without its notes)."""
    paths = [path] if isinstance(path, Path) else list(path)
    return infer_draft(paths, contract_id=contract_id, owner=owner, **options).contract
