"""ODCS v3 documents written by any tool as FedPark contracts, one per schema object.

A document FedPark cannot import is refused in one line naming the schema object and the
property; what it imports differently from how the document says it (an id that is not a
FedPark slug, a rule FedPark cannot check, a physical type it does not know) is said in a
note. Nothing is dropped silently: the caller shows the notes.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from fedpark.contracts.document import contract_from_data
from fedpark.contracts.errors import ContractFormatError
from fedpark.contracts.model import Contract, Domain
from fedpark.contracts.names import SEMVER
from fedpark.contracts.odcs_columns import as_list, column_data, customs, cut
from fedpark.contracts.odcs_types import Dialect

MAX_ID = 63
MAX_DESCRIPTION = 20_000  # the contract model's


@dataclass(frozen=True)
class Imported:
    """One contract made from one schema object, and what was changed on the way."""

    contract: Contract
    schema_name: str
    notes: tuple[str, ...] = ()


@dataclass
class _Context:
    dialect: Dialect
    notes: list[str] = field(default_factory=list)


def slug_id(text: str) -> str:
    """A FedPark id from any text: lowercase ASCII, other characters as dashes, at most 63
    characters (a cut one ends in a hash of the whole, so two long ids stay apart)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    if len(slug) > MAX_ID:
        slug = f"{slug[: MAX_ID - 9].rstrip('-')}-{digest}"
    if len(slug) < 2:
        slug = f"odcs-{slug or digest}"
    return slug


def _version(value: Any) -> str:
    """ODCS versions are free text; ``1``, ``1.2`` and ``v1.2.3`` are meant as semver."""
    text = str(value if value is not None else "0.1.0").strip()
    bare = text[1:] if text[:1] in "vV" and text[1:2].isdigit() else text
    if re.fullmatch(r"\d+(\.\d+)?", bare):
        bare = ".".join([*bare.split("."), "0", "0"][:3])
    if not re.match(SEMVER, bare):
        raise ContractFormatError(
            f"version {text!r} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.0.0)"
        )
    return bare


def _check_kind(document: dict[str, Any]) -> None:
    api = str(document.get("apiVersion", ""))
    if document.get("kind") != "DataContract" or not api.startswith("v3"):
        raise ContractFormatError(
            f"not an ODCS v3 DataContract (kind {document.get('kind')!r}, apiVersion "
            f"{api or 'missing'}): FedPark imports ODCS v3.0.0 and later"
        )
    if not isinstance(document.get("id"), str | int) or not str(document["id"]).strip():
        raise ContractFormatError("the document has no id (ODCS requires one)")


def _name(table: Any, index: int) -> str:
    name = table.get("name") if isinstance(table, dict) else None
    return str(name) if name else f"#{index + 1}"


def _chosen(document: dict[str, Any], wanted: str | None) -> list[tuple[str, dict[str, Any]]]:
    """The schema objects to import: the one named, else every one with properties."""
    schema = document.get("schema")
    objects = [(_name(t, i), t) for i, t in enumerate(schema if isinstance(schema, list) else [])]
    if not objects:
        raise ContractFormatError("the document has no schema objects: nothing to import")
    if wanted is not None:
        named = [o for o in objects if o[0] == wanted] or [
            o for o in objects if o[0].lower() == wanted.lower()
        ]
        if not named:
            listed = ", ".join(name for name, _ in objects)
            raise ContractFormatError(f"no schema object is named {wanted!r} (it has {listed})")
        objects = named[:1]
    for name, table in objects:
        if not isinstance(table, dict):
            raise ContractFormatError(f'schema object "{name}" is not a mapping')
    with_properties = [(n, t) for n, t in objects if t.get("properties")]
    if not with_properties:
        names = ", ".join(f'"{n}"' for n, _ in objects)
        raise ContractFormatError(
            f"schema object {names} has no properties: no columns to make a contract of"
            if len(objects) == 1
            else f"no schema object has properties ({names}): no columns to make a contract of"
        )
    return with_properties


def _rows(table: dict[str, Any], where: str) -> dict[str, Any]:
    for check in as_list(table, "quality", where):
        if isinstance(check, dict) and check.get("rule") == "rowCount":
            rows = {
                "min_rows": check.get("mustBeGreaterOrEqualTo"),
                "max_rows": check.get("mustBeLessOrEqualTo"),
            }
            return {k: v for k, v in rows.items() if v is not None}
    return {}


def _description(
    document: dict[str, Any], table: dict[str, Any], kept: str, notes: list[str]
) -> str:
    """The document's purpose, usage and limitations and the object's description; the
    original id last, never cut off."""
    described = document.get("description")
    parts = []
    if isinstance(described, dict):
        parts = [str(described[k]) for k in ("purpose", "usage", "limitations") if described.get(k)]
    if table.get("description"):
        parts.append(str(table["description"]))
    room = MAX_DESCRIPTION - (len(kept) + 2 if kept else 0)
    text = cut("\n\n".join(parts), room, "the description", notes)
    return "\n\n".join(p for p in (text, kept) if p)


def _identity(
    document: dict[str, Any], name: str, several: bool, notes: list[str]
) -> tuple[str, str, str]:
    """The contract's id, title, and the sentence that keeps the original id (or '')."""
    original = str(document.get("id") or "")
    wanted = f"{original}-{name}" if several else original
    new_id = slug_id(wanted)
    title = str(document.get("name") or original or name)
    if several:
        title = f"{title}: {name}"
    kept = "" if new_id == wanted else f"ODCS id: {original}"
    if several:
        kept = f"ODCS id: {original}, schema object: {name}"
    return new_id, cut(title, 200, "the title", notes), kept


def _contract(
    document: dict[str, Any], name: str, table: dict[str, Any], owner: str | None, several: bool
) -> Imported:
    ctx = _Context(Dialect.of(document))
    custom = customs(document)
    new_id, title, kept = _identity(document, name, several, ctx.notes)
    original = str(document.get("id") or "")
    if kept and new_id != original:
        why = (
            f"one contract per schema object: id {original!r} and {name!r} make"
            if several
            else f"id {original!r} is not a FedPark id:"
        )
        ctx.notes.append(
            f"{why} the contract's id {new_id!r} (the original is kept in its description)"
        )
    where = f'schema object "{name}"'
    if document.get("domain") and _domain(document["domain"]) == "other":
        ctx.notes.append(f"domain {document['domain']!r} is not one of FedPark's: set to other")
    columns = [
        column_data(p, f'{where}, property "{p.get("name")}"', ctx.dialect, ctx.notes)
        if isinstance(p, dict)
        else _not_a_mapping(where, i)
        for i, p in enumerate(as_list(table, "properties", where))
    ]
    owner = custom.get("fedpark.owner") or owner
    if not owner:
        raise ContractFormatError(
            "the document names no FedPark owner (customProperty fedpark.owner): give the "
            "organization that owns the data (--owner)"
        )
    data = {
        "id": new_id,
        "version": _version(document.get("version")),
        "title": title,
        "description": _description(document, table, kept, ctx.notes),
        "domain": _domain(document.get("domain")),
        "owner": owner,
        "columns": columns,
        "rows": _rows(table, where),
    }
    if "fedpark.policy" in custom:
        data["policy"] = custom["fedpark.policy"]
    return Imported(contract_from_data(data, where), name, tuple(ctx.notes))


def _domain(value: Any) -> str:
    """ODCS domains are free text; FedPark's are a fixed set."""
    known = {d.value for d in Domain}
    return value if isinstance(value, str) and value in known else "other"


def _not_a_mapping(where: str, index: int) -> dict[str, Any]:
    raise ContractFormatError(f"{where}: property #{index + 1} is not a mapping")


def import_odcs(
    document: dict[str, Any], owner: str | None = None, schema: str | None = None
) -> list[Imported]:
    """A contract per schema object with properties (or the one named ``schema``)."""
    _check_kind(document)
    chosen = _chosen(document, schema)
    several = isinstance(document.get("schema"), list) and len(document["schema"]) > 1
    imported = [_contract(document, n, t, owner, several) for n, t in chosen]
    skipped = [
        _name(t, i)
        for i, t in enumerate(document["schema"])
        if schema is None and isinstance(t, dict) and not t.get("properties")
    ]
    if skipped and imported:
        note = f"skipped schema object(s) without properties: {', '.join(skipped)}"
        first = imported[0]
        imported[0] = Imported(first.contract, first.schema_name, (*first.notes, note))
    _distinct_ids(imported)
    return imported


def _distinct_ids(imported: list[Imported]) -> None:
    seen: dict[str, str] = {}
    for item in imported:
        other = seen.setdefault(item.contract.id, item.schema_name)
        if other != item.schema_name:
            raise ContractFormatError(
                f'schema objects "{other}" and "{item.schema_name}" make the same id '
                f"{item.contract.id!r}: rename one of them in the document"
            )
