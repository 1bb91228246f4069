"""ODCS property types as Arrow types: the ``physicalType`` first, the ``logicalType`` after.

Other tools write the database's spelling into ``physicalType`` (``VARCHAR(40)``,
``NUMBER(38,2)``, ``TIMESTAMP_NTZ(9)``, ``timestamp with time zone``, ``ARRAY<STRING>``) and a
coarse ``logicalType`` beside it (``date`` for a timestamp, ``number`` for a 64-bit float).
The logical type alone would refuse real data (a timestamp column read as ``date32``), so the
physical one wins whenever FedPark knows it; an unknown one falls back with a note. Every
width is chosen so that the database's values fit: data may widen into a contract type
(int8 data for an int64 column), never narrow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from fedpark.contracts.types import TypeSpecError, parse_type

_INTS = {
    "tinyint": pa.int8(),
    "int1": pa.int8(),
    "byteint": pa.int8(),
    "smallint": pa.int16(),
    "int2": pa.int16(),
    "short": pa.int16(),
    "int16": pa.int16(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "int4": pa.int32(),
    "mediumint": pa.int32(),
    "int32": pa.int32(),
    "bigint": pa.int64(),
    "long": pa.int64(),
    "int64": pa.int64(),
    # Postgres' int8 is 64-bit (Arrow's and ClickHouse's are 8-bit): int64 holds either
    "int8": pa.int64(),
    "serial": pa.int32(),
    "bigserial": pa.int64(),
    "smallserial": pa.int16(),
}
_UNSIGNED = {pa.int8(): pa.uint8(), pa.int16(): pa.uint16(), pa.int32(): pa.uint32()}
_SCALARS = {
    **{name: pa.string() for name in ("varchar", "char", "character", "character varying")},
    **{name: pa.string() for name in ("nvarchar", "nchar", "varchar2", "nvarchar2", "text")},
    **{name: pa.string() for name in ("string", "tinytext", "mediumtext", "longtext", "ntext")},
    **{name: pa.string() for name in ("clob", "nclob", "citext", "uuid", "uniqueidentifier")},
    # JSON documents arrive as their text
    **{name: pa.string() for name in ("json", "jsonb", "variant", "xml", "super", "enum")},
    **{name: pa.binary() for name in ("blob", "raw", "bytea", "binary", "varbinary", "bytes")},
    **{name: pa.binary() for name in ("tinyblob", "mediumblob", "longblob", "long raw")},
    **{name: pa.binary() for name in ("image", "binary varying")},
    **{name: pa.bool_() for name in ("boolean", "bool", "bit")},
    **{name: pa.float32() for name in ("real", "float4", "float32", "binary_float")},
    **{name: pa.float64() for name in ("double", "double precision", "float8", "float64")},
    **{name: pa.float64() for name in ("binary_double", "smallmoney", "money")},
    "date": pa.date32(),
    **{name: pa.time64("us") for name in ("time", "time without time zone", "timetz")},
    "time with time zone": pa.time64("us"),
}
_NAIVE = frozenset(
    {"timestamp", "timestamp without time zone", "timestamp_ntz", "datetime", "datetime2"}
    | {"smalldatetime"}
)
_ZONED = frozenset(
    {"timestamptz", "timestamp with time zone", "timestamp_tz", "timestamp_ltz"}
    | {"timestamp with local time zone", "datetimeoffset"}
)
_DECIMALS = ("decimal", "numeric", "number", "dec", "bignumeric", "bigdecimal")
# Engines whose plain TIMESTAMP is an instant (Arrow reads it with a zone) and whose integer
# names all mean 64 bits
_INSTANT_TIMESTAMPS = frozenset({"bigquery", "databricks"})
_WIDE_INTEGERS = frozenset({"bigquery", "snowflake"})


@dataclass(frozen=True)
class Dialect:
    """What the document's ``servers`` say about how its physical types are read."""

    engines: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, document: dict[str, Any]) -> Dialect:
        servers = document.get("servers")
        listed = servers if isinstance(servers, list) else []  # only a hint: never refused
        kinds = {str(s.get("type", "")).lower() for s in listed if isinstance(s, dict)}
        return cls(frozenset(kinds))


def _unit(precision: int | None, default: str = "us") -> str:
    if precision is None:
        return default
    return "s" if precision == 0 else "ms" if precision <= 3 else "us" if precision <= 6 else "ns"


def _numbers(params: str | None) -> list[int]:
    return [int(p) for p in (params or "").replace(" ", "").split(",") if p.isdigit()]


def _decimal(name: str, params: list[int], dialect: Dialect) -> pa.DataType | None:
    if not params:
        if "bigquery" in dialect.engines and name in ("numeric", "bignumeric"):
            return pa.decimal128(38, 9) if name == "numeric" else pa.decimal256(76, 38)
        return None  # no precision: the logical type decides
    precision, scale = params[0], params[1] if len(params) > 1 else 0
    if "snowflake" in dialect.engines and scale == 0:
        return pa.int64()  # Snowflake's INTEGER is NUMBER(38,0) and arrives as int64
    if not 1 <= precision <= 76 or scale > precision:
        return None
    return (pa.decimal128 if precision <= 38 else pa.decimal256)(precision, scale)


def _scalar(text: str, dialect: Dialect) -> pa.DataType | None:
    low = text.strip().lower()
    params = re.search(r"\(([^)]*)\)", low)
    bare = low[: params.start()] + " " + low[params.end() :] if params else low
    name = " ".join(bare.split())
    numbers = _numbers(params.group(1) if params else None)
    first = numbers[0] if numbers else None
    base, _, rest = name.partition(" ")
    if name in _DECIMALS:
        return _decimal(name, numbers, dialect)
    if base in _INTS and rest in ("", "unsigned"):
        wide = dialect.engines & _WIDE_INTEGERS and base != "int8"
        dtype = pa.int64() if wide else _INTS[base]
        return _UNSIGNED.get(dtype, pa.uint64()) if rest == "unsigned" else dtype
    if name == "float":  # FLOAT(p): the SQL standard's bits of precision
        return pa.float32() if first is not None and first <= 24 else pa.float64()
    if name in _ZONED or (name == "timestamp" and dialect.engines & _INSTANT_TIMESTAMPS):
        return pa.timestamp(_unit(first), tz="UTC")
    if name in _NAIVE:
        return pa.timestamp(_unit(first))
    if name.startswith("time") and name in _SCALARS:
        return pa.time64("ns" if first is not None and first > 6 else "us")
    return _SCALARS.get(name)


def is_bare_decimal(text: str) -> bool:
    """NUMERIC, DECIMAL or NUMBER without a precision (the logical type decides)."""
    return " ".join(text.lower().split()) in _DECIMALS


def _split(text: str) -> list[str]:
    """Top-level comma-separated parts (commas inside <>, () or [] stay)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "<([":
            depth += 1
        elif char in ">)]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def _struct_field(text: str, dialect: Dialect) -> pa.Field | None:
    match = re.fullmatch(r"\s*[`\"]?([^`\":\s]+)[`\"]?\s*:?\s*(.+?)\s*(not null)?\s*", text, re.I)
    if match is None:
        return None
    dtype = physical_type(match.group(2), dialect)
    return None if dtype is None else pa.field(match.group(1), dtype, not match.group(3))


def physical_type(text: str, dialect: Dialect = Dialect()) -> pa.DataType | None:
    """The Arrow type of a database's type spelling; None when FedPark does not know it."""
    text = text.strip()
    if text.endswith("[]"):  # Postgres arrays: integer[]
        item = physical_type(text[:-2], dialect)
        return None if item is None else pa.list_(item)
    nested = re.fullmatch(r"(array|list|struct|row|map)\s*[<(](.*)[>)]", text, re.I | re.S)
    if nested is None:
        return _scalar(text, dialect)
    kind, inner = nested.group(1).lower(), nested.group(2)
    if kind in ("array", "list"):
        item = physical_type(inner, dialect)
        return None if item is None else pa.list_(item)
    if kind == "map":
        parts = _split(inner)
        types = [physical_type(p, dialect) for p in parts]
        if len(types) != 2 or types[0] is None or types[1] is None:
            return None
        return pa.map_(types[0], types[1])
    fields = [_struct_field(p, dialect) for p in _split(inner)]
    if not fields or any(f is None for f in fields):
        return None
    return pa.struct([f for f in fields if f is not None])


def arrow_spelling(text: str) -> pa.DataType | None:
    """FedPark's own spelling (what its export writes), or None."""
    try:
        return parse_type(text)
    except TypeSpecError:
        return None
