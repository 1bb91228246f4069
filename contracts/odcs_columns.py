"""One ODCS property as a FedPark column: its Arrow type, nullability, role and rules.

A rule FedPark cannot hold for the column's type (a pattern RE2 cannot run, a bound of the
wrong kind, a percentage past 100) is left out with a note rather than refusing a document
its authors' tools accept; a type FedPark cannot hold is refused, naming the property.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pydantic import ValidationError

from fedpark.contracts.errors import ContractFormatError, ContractInvalidError
from fedpark.contracts.model import Column
from fedpark.contracts.odcs_types import Dialect, arrow_spelling, is_bare_decimal, physical_type
from fedpark.contracts.types import TypeSpecError, format_type, normalize_type

_INTEGER_FORMATS = {
    "i8": pa.int8(),
    "i16": pa.int16(),
    "i32": pa.int32(),
    "i64": pa.int64(),
    "u8": pa.uint8(),
    "u16": pa.uint16(),
    "u32": pa.uint32(),
    "u64": pa.uint64(),
    "i128": pa.decimal128(38, 0),
    "u128": pa.decimal128(38, 0),
}
_PII_CLASSES = frozenset({"restricted", "confidential", "pii", "sensitive"})


def as_list(node: dict[str, Any], key: str, where: str) -> list[Any]:
    """``node[key]`` where ODCS has a list (absent: empty); anything else is refused."""
    value = node.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ContractFormatError(f"{where}: {key} must be a list")
    return value


def cut(text: str, limit: int, what: str, notes: list[str]) -> str:
    """``text`` within a contract field's length, said in a note when it was longer."""
    if len(text) <= limit:
        return text
    notes.append(f"{what}: cut to its first {limit} characters (FedPark's limit)")
    return text[:limit]


def customs(node: dict[str, Any], where: str = "the document") -> dict[str, Any]:
    items = as_list(node, "customProperties", where)
    return {str(i.get("property")): i.get("value") for i in items if isinstance(i, dict)}


def _options(prop: dict[str, Any]) -> dict[str, Any]:
    options = prop.get("logicalTypeOptions")
    return options if isinstance(options, dict) else {}


def _timestamp(prop: dict[str, Any]) -> pa.DataType:
    options = _options(prop)
    if options.get("timezone") is True:
        zone = str(options.get("defaultTimezone") or "UTC")
        return pa.timestamp("us", tz="UTC" if zone in ("Etc/UTC", "UTC", "Z") else zone)
    return pa.timestamp("us")


def _logical(prop: dict[str, Any], where: str, notes: list[str]) -> pa.DataType:
    """The type the logical type alone gives (no physical type FedPark knows)."""
    logical = prop.get("logicalType")
    if logical is not None and not isinstance(logical, str):
        raise ContractFormatError(f"{where}: logicalType must be text")
    fmt = str(_options(prop).get("format", "")).lower()
    if logical == "integer":
        return _INTEGER_FORMATS.get(fmt, pa.int64())
    if logical == "number":
        return pa.float32() if fmt == "f32" else pa.float64()
    if logical == "string":
        return pa.binary() if fmt == "binary" else pa.string()
    simple = {"boolean": pa.bool_(), "date": pa.date32(), "time": pa.time64("us")}
    if logical in simple:
        return simple[str(logical)]
    if logical == "timestamp":
        return _timestamp(prop)
    if logical == "object":
        raise ContractFormatError(
            f"{where}: logicalType object without properties: FedPark cannot tell its "
            "fields (list them under properties, or give a physicalType)"
        )
    if logical == "array":
        notes.append(f"{where}: an array without items: read as list<string>")
        return pa.list_(pa.string())
    if logical is None:
        notes.append(f"{where}: no logicalType or physicalType: read as string")
        return pa.string()
    raise ContractFormatError(f"{where}: logicalType {logical!r} is not an ODCS v3 logical type")


def _children(prop: dict[str, Any], where: str, dialect: Dialect, notes: list[str]) -> pa.DataType:
    """An object's struct of its properties, an array's list of its items."""
    if prop.get("logicalType") == "array" or "items" in prop:
        items = prop.get("items")
        if not isinstance(items, dict):
            return _logical({"logicalType": "array"}, where, notes)
        return pa.list_(property_type(items, f"{where} items", dialect, notes))
    fields = []
    for child in as_list(prop, "properties", where):
        if not isinstance(child, dict) or not child.get("name"):
            raise ContractFormatError(f"{where}: a nested property has no name")
        inner = f"{where}.{child['name']}"
        if child.get("logicalTypeOptions") or child.get("quality"):
            notes.append(f"{inner}: rules of nested properties are not checked by FedPark")
        dtype = property_type(child, inner, dialect, notes)
        fields.append(pa.field(str(child["name"]), dtype, not child.get("required", False)))
    return pa.struct(fields) if fields else _logical(prop, where, notes)


def property_type(
    prop: dict[str, Any], where: str, dialect: Dialect, notes: list[str], fedpark: bool = False
) -> pa.DataType:
    """The physical type when FedPark knows it, else the nested or the logical one.

    ``fedpark``: the property was written by FedPark's export, whose physicalType is an
    Arrow type in the contract grammar (``int8`` there is 8-bit, not Postgres' 64-bit)."""
    physical = prop.get("physicalType")
    nested = bool(prop.get("properties")) or isinstance(prop.get("items"), dict)
    known = None
    if isinstance(physical, str) and physical.strip():
        spellings = (arrow_spelling, lambda t: physical_type(t, dialect))
        for read in spellings if fedpark else spellings[::-1]:
            known = read(physical)
            if known is not None:
                break
    is_nested = known is not None and pa.types.is_nested(known)
    if known is not None and (fedpark or not (nested and is_nested)):
        return known
    if nested or prop.get("logicalType") in ("object", "array"):
        return _children(prop, where, dialect, notes)
    if isinstance(physical, str) and physical.strip():
        why = "has no precision" if is_bare_decimal(physical) else "is not a type FedPark knows"
        notes.append(
            f"{where}: physicalType {physical!r} {why}: typed from logicalType "
            f"{prop.get('logicalType') or 'string'}"
        )
    return _logical(prop, where, notes)


def _type_text(dtype: pa.DataType, where: str) -> str:
    try:
        return normalize_type(format_type(dtype))
    except TypeSpecError as exc:  # FedPark's own words about its grammar
        raise ContractFormatError(
            f"{where}: FedPark contracts cannot hold its type ({exc})"
        ) from None


def _quality(prop: dict[str, Any], where: str, notes: list[str]) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    for check in as_list(prop, "quality", where):
        if not isinstance(check, dict):
            continue
        rule, unit = check.get("rule"), check.get("unit", "rows")
        arguments = check.get("arguments")
        valid = check.get("validValues")
        if valid is None and isinstance(arguments, dict):
            valid = arguments.get("validValues")
        # v3.1 names library checks by `metric` (nullValues, invalidValues) where v3.0 had
        # `rule` (nullCheck, validValues); the same checks under either name.
        metric = check.get("metric")
        if isinstance(metric, str):
            rule = {"nullValues": "nullCheck", "invalidValues": "validValues"}.get(metric, metric)
        written = metric if isinstance(metric, str) else rule  # as the document names it
        if rule == "validValues" and isinstance(valid, list) and not _tolerant(check, unit):
            rules["allowed_values"] = valid
        elif rule == "validValues" and isinstance(valid, list):
            notes.append(
                f"{where}: quality rule {written!r} lets some values be invalid; FedPark's "
                "allowed values admit none, so it is not checked"
            )
        elif rule == "nullCheck" and unit == "percent" and "mustBeLessOrEqualTo" in check:
            rules["max_null_fraction"] = float(check["mustBeLessOrEqualTo"]) / 100
        elif rule == "nullCheck" and 0 in (check.get("mustBe"), check.get("mustBeLessOrEqualTo")):
            rules["max_null_fraction"] = 0.0
        else:
            kind = written or check.get("type", "library")
            notes.append(f"{where}: quality rule {kind!r} is not checked by FedPark")
    return rules


def _tolerant(check: dict[str, Any], unit: object) -> bool:
    """Whether a valid-values check lets some values be invalid (a threshold above none)."""
    bounds = {
        k: check[k] for k in ("mustBe", "mustBeLessOrEqualTo", "mustBeLessThan") if k in check
    }
    if not bounds:
        return False  # v3.0's rule: validValues names the values, with no threshold
    none_allowed = (
        bounds.get("mustBe") == 0
        or bounds.get("mustBeLessOrEqualTo") == 0
        or bounds.get("mustBeLessThan") == (1 if unit != "percent" else 0)
    )
    return not none_allowed


def _rules(prop: dict[str, Any], where: str, notes: list[str]) -> dict[str, Any]:
    custom = customs(prop)
    items = prop.get("items")
    # a list's bounds sit on its items (checked element-wise); FedPark's export puts bounds
    # the schema has no option for (a duration's) in customProperties
    options = {**_options(items if isinstance(items, dict) else {}), **_options(prop)}
    rules: dict[str, Any] = {
        "min": options.get("minimum", custom.get("fedpark.minimum")),
        "max": options.get("maximum", custom.get("fedpark.maximum")),
        "regex": options.get("pattern", custom.get("fedpark.pattern")),
        "unique": bool(prop.get("unique", False)),
        "finite": bool(custom.get("fedpark.finite", False)),
        "monotonic": custom.get("fedpark.monotonic"),
        **_quality(prop, where, notes),
    }
    _exclusive_and_unchecked(options, rules, where, notes)
    return {k: v for k, v in rules.items() if v is not None and v is not False}


# Options that describe rather than constrain, or that the rules above already took
_TAKEN = frozenset({"minimum", "maximum", "pattern", "format", "timezone", "defaultTimezone"})


def _exclusive_and_unchecked(
    options: dict[str, Any], rules: dict[str, Any], where: str, notes: list[str]
) -> None:
    """Exclusive bounds become inclusive ones (v3.0 flags them, v3.1 gives the value): a
    little more lenient than the document, never refusing its data. Said in a note, as is
    every constraint FedPark does not check."""
    for key, rule in (("exclusiveMinimum", "min"), ("exclusiveMaximum", "max")):
        value = options.get(key)
        if value is None or value is False:
            continue
        if value is not True and rules[rule] is None:
            rules[rule] = value
        notes.append(f"{where}: {key}: FedPark checks the bound inclusively")
    unchecked = sorted(k for k in options if k not in _TAKEN and not k.startswith("exclusive"))
    if unchecked:
        notes.append(f"{where}: logicalTypeOptions not checked by FedPark: {', '.join(unchecked)}")


def _fitting(column: dict[str, Any], where: str, notes: list[str]) -> dict[str, Any]:
    """Each rule alone against the column's type: one that cannot hold is left out."""
    kept: dict[str, Any] = {}
    for rule, value in column["rules"].items():
        if rule in ("min", "max") and not isinstance(value, int | float | str):
            value = str(value)  # a YAML date: rules hold times as ISO text
        try:
            Column.model_validate({**column, "rules": {rule: value}})
        except ValidationError as exc:
            problem = ContractInvalidError.from_pydantic(exc, where).problems[0]
            notes.append(f"{where}: rule {rule} left out: {problem.message}")
            continue
        kept[rule] = value
    return {**column, "rules": kept}


def _role(prop: dict[str, Any]) -> str:
    custom = customs(prop)
    if custom.get("fedpark.role"):
        return str(custom["fedpark.role"])
    if str(prop.get("classification", "")).lower() in _PII_CLASSES or custom.get("pii") is True:
        return "pii"
    return "id" if prop.get("primaryKey") else "feature"


def column_data(
    prop: dict[str, Any], where: str, dialect: Dialect, notes: list[str]
) -> dict[str, Any]:
    """The column's data for the contract model (checked there, with the whole contract)."""
    if not prop.get("name"):
        raise ContractFormatError(f"{where}: a property has no name")
    fedpark = "fedpark.role" in customs(prop, where)
    dtype = property_type(prop, where, dialect, notes, fedpark)
    column = {
        "name": str(prop["name"]),
        "type": _type_text(dtype, where),
        "nullable": not prop.get("required", False),
        "unit": customs(prop).get("fedpark.unit"),
        "description": cut(
            str(prop.get("description") or ""), 2000, f"{where}: description", notes
        ),
        "role": _role(prop),
        "rules": _rules(prop, where, notes),
    }
    return _fitting(column, where, notes)
