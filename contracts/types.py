"""Arrow data types written as short strings in contracts, parsed and printed losslessly.

Grammar (whitespace is free; names are case-insensitive)::

    type      := primitive | temporal | decimal | nested
    primitive := int8 | int16 | int32 | int64 | uint8 | ... | uint64
               | float16 | float32 | float64 | bool | null
               | string | large_string | string_view | binary | large_binary | binary_view
               | fixed_size_binary[N] | uuid | date32 | date64
    temporal  := timestamp[UNIT] | timestamp[UNIT, tz=ZONE] | duration[UNIT]
               | time32[s|ms] | time64[us|ns]                  UNIT := s | ms | us | ns
    decimal   := decimal32(P, S) | decimal64(P, S) | decimal128(P, S) | decimal256(P, S)
    nested    := list<ITEM> | large_list<ITEM> | fixed_size_list<ITEM>[N]
               | struct<NAME: ITEM, ...> | map<KEY, ITEM[, sorted]>
               | dictionary<INDEX, VALUE[, ordered]>
    ITEM      := type [not null]
    NAME      := identifier | "JSON string"      (first-name, first name, "" are quoted)

Aliases accepted on input: ``float`` → float32, ``double`` → float64, ``boolean`` → bool,
``utf8`` → string, ``date`` → date32, ``decimal(P, S)`` → decimal128,
``extension<arrow.uuid>`` → uuid. :func:`format_type` always prints the canonical spelling,
so ``format_type(parse_type(s))`` is a normal form. Types real files carry that no rule can
check (unions, intervals, run-end encoded, list views, other extension types) are refused
naming the type (:func:`unsupported`).
"""

from __future__ import annotations

import functools
import json
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa

_PRIMITIVES: dict[str, pa.DataType] = {
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "float16": pa.float16(),
    "null": pa.null(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "large_string": pa.large_string(),
    "binary": pa.binary(),
    "large_binary": pa.large_binary(),
    "string_view": pa.string_view(),
    "binary_view": pa.binary_view(),
    "uuid": pa.uuid(),
    "date32": pa.date32(),
    "date64": pa.date64(),
}
_ALIASES = {
    "float": "float32",
    "double": "float64",
    "halffloat": "float16",
    "boolean": "bool",
    "utf8": "string",
    "large_utf8": "large_string",
    "date": "date32",
}
_UNITS = ("s", "ms", "us", "ns")
_TOKEN = re.compile(
    r"\s*(?:(?P<tz>tz\s*=\s*[^\]\s,]+)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<num>\d+)"
    r'|(?P<quoted>"(?:[^"\\]|\\.)*")|(?P<sym>[<>\[\](),:.]))'
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Largest precision of each decimal width (Arrow's limits).
_DECIMALS = {"decimal32": 9, "decimal64": 18, "decimal128": 38, "decimal256": 76}
_OFFSET = re.compile(r"^[+-]\d{2}:\d{2}$")


# Real factory data nests a few levels (a list of structs of lists); deeper is a mistake or an
# attack on the parser's and the validator's recursion.
MAX_NESTING = 16


class TypeSpecError(ValueError):
    """A type string that is not a valid Arrow type in the contract grammar."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[str] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if not match:
                raise TypeSpecError(f"unexpected character {text[pos]!r} in type {text!r}")
            self.tokens.append(match.group(match.lastgroup or "word"))
            pos = match.end()
        self.i = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None:
            raise TypeSpecError(f"type {self.text!r} ends too early")
        if expected is not None and token.lower() != expected:
            raise TypeSpecError(f"expected {expected!r} but found {token!r} in type {self.text!r}")
        self.i += 1
        return token

    def number(self) -> int:
        token = self.take()
        if not token.isdigit():
            raise TypeSpecError(f"expected a number but found {token!r} in type {self.text!r}")
        return int(token)

    def unit(self, allowed: tuple[str, ...] = _UNITS) -> str:
        unit = self.take().lower()
        if unit not in allowed:
            raise TypeSpecError(f"unit must be one of {', '.join(allowed)}, not {unit!r}")
        return unit

    def item(self) -> pa.Field:
        """A nested element: a type with optional ``not null``."""
        dtype = self.type()
        nullable = True
        if (self.peek() or "").lower() == "not":
            self.take()
            self.take("null")
            nullable = False
        return pa.field("item", dtype, nullable=nullable)

    def type(self) -> pa.DataType:
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise TypeSpecError(f"types nest at most {MAX_NESTING} levels deep")
            return self._type()
        finally:
            self.depth -= 1

    def _type(self) -> pa.DataType:
        name = self.take().lower()
        name = _ALIASES.get(name, name)
        if name in _PRIMITIVES:
            if name == "date32" and self.peek() == "[":  # pyarrow prints date32[day]
                self.take("[")
                self.take("day")
                self.take("]")
            return _PRIMITIVES[name]
        if name == "timestamp":
            self.take("[")
            unit = self.unit()
            tz = None
            if self.peek() == ",":
                self.take(",")
                tz = _time_zone(self.take())
            self.take("]")
            return pa.timestamp(unit, tz=tz)
        if name in ("duration", "time32", "time64"):
            self.take("[")
            allowed = {"duration": _UNITS, "time32": ("s", "ms"), "time64": ("us", "ns")}[name]
            unit = self.unit(allowed)
            self.take("]")
            return {"duration": pa.duration, "time32": pa.time32, "time64": pa.time64}[name](unit)
        if name == "decimal" or name in _DECIMALS:
            return self._decimal("decimal128" if name == "decimal" else name)
        if name == "fixed_size_binary":
            self.take("[")
            width = self.number()
            self.take("]")
            if width < 1:
                raise TypeSpecError("fixed_size_binary needs a width of at least 1 byte")
            return pa.binary(width)
        if name == "extension":  # pyarrow prints a UUID column as extension<arrow.uuid>
            for token in ("<", "arrow", ".", "uuid", ">"):
                self.take(token)
            return pa.uuid()
        if name == "map":
            return self._map()
        if name in ("list", "large_list", "fixed_size_list"):
            self.take("<")
            self._skip_item_name()
            item = self.item()
            self.take(">")
            if name == "fixed_size_list":
                self.take("[")
                size = self.number()
                self.take("]")
                if size < 1:
                    raise TypeSpecError("fixed_size_list needs a size of at least 1")
                return pa.list_(item, size)
            return pa.large_list(item) if name == "large_list" else pa.list_(item)
        if name == "struct":
            return self._struct()
        if name == "dictionary":
            return self._dictionary()
        raise TypeSpecError(f"unknown type {name!r}")

    def _skip_item_name(self) -> None:
        # pyarrow prints list<item: float>; accept and drop the element's name.
        if len(self.tokens) > self.i + 1 and self.tokens[self.i + 1] == ":":
            self.i += 2

    def _decimal(self, name: str) -> pa.DataType:
        self.take("(")
        precision = self.number()
        self.take(",")
        scale = self.number()
        self.take(")")
        limit = _DECIMALS[name]
        if not 1 <= precision <= limit or scale > precision:
            raise TypeSpecError(
                f"invalid {name}({precision}, {scale}): precision from 1 to {limit}, scale "
                "at most the precision"
            )
        make = {
            "decimal32": pa.decimal32,
            "decimal64": pa.decimal64,
            "decimal128": pa.decimal128,
            "decimal256": pa.decimal256,
        }[name]
        return make(precision, scale)

    def _field_name(self) -> str:
        token = self.take()
        if token.startswith('"'):
            try:
                name = json.loads(token)
            except ValueError:
                raise TypeSpecError(f"invalid quoted field name in type {self.text!r}") from None
            return str(name)
        if not _IDENTIFIER.fullmatch(token) and not token.isdigit():
            raise TypeSpecError(f"expected a field name but found {token!r} in type {self.text!r}")
        return token

    def _struct(self) -> pa.DataType:
        self.take("<")
        fields: list[pa.Field] = []
        while True:
            name = self._field_name()
            self.take(":")
            item = self.item()
            if any(f.name == name for f in fields):
                raise TypeSpecError(f"struct field {name!r} appears twice")
            fields.append(item.with_name(name))
            if self.peek() == ",":
                self.take(",")
                continue
            self.take(">")
            return pa.struct(fields)

    def _pair(self, flag: tuple[str, ...]) -> tuple[pa.DataType, pa.Field, bool]:
        """``<FIRST, SECOND [not null][, FLAG]>``: a map's or a dictionary's types."""
        self.take("<")
        first = self.type()
        self.take(",")
        second = self.item()
        flagged = False
        if self.peek() == ",":
            self.take(",")
            if self.take().lower() not in flag:
                raise TypeSpecError(f"expected {flag[0]!r} or '>' in type {self.text!r}")
            flagged = True
        self.take(">")
        return first, second, flagged

    def _map(self) -> pa.DataType:
        key, value, keys_sorted = self._pair(("sorted", "keys_sorted"))
        if pa.types.is_nested(key) or pa.types.is_null(key) or pa.types.is_dictionary(key):
            raise TypeSpecError("map keys must be a primitive type (string, an integer, ...)")
        return pa.map_(key, value.with_name("value"), keys_sorted=keys_sorted)

    def _dictionary(self) -> pa.DataType:
        index, value, ordered = self._pair(("ordered",))
        if not pa.types.is_integer(index):
            raise TypeSpecError("dictionary indices must be an integer type")
        if not value.nullable:
            raise TypeSpecError("a dictionary's values cannot be 'not null'")
        return pa.dictionary(index, value.type, ordered=ordered)


def _time_zone(token: str) -> str:
    if not token.startswith("tz"):
        raise TypeSpecError(f"expected tz=ZONE but found {token!r}")
    zone = token.split("=", 1)[1].strip()
    if _OFFSET.match(zone):
        return zone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise TypeSpecError(f"unknown time zone {zone!r}") from None
    return zone


def parse_type(text: str) -> pa.DataType:
    """Parse a contract type string into a ``pyarrow.DataType``."""
    # A column's type is read at every check of it: the usual short spellings are parsed
    # once (types are immutable, so they are shared); a long struct type, rare and possibly
    # a hostile document's, is parsed each time rather than held.
    return _parse_short(text) if len(text) <= 256 else _parse(text)


@functools.lru_cache(maxsize=4096)
def _parse_short(text: str) -> pa.DataType:
    return _parse(text)


def _parse(text: str) -> pa.DataType:
    parser = _Parser(text)
    dtype = parser.type()
    if parser.peek() is not None:
        raise TypeSpecError(f"unexpected {parser.peek()!r} after the type in {text!r}")
    return dtype


_NAMES = {str(v): k for k, v in _PRIMITIVES.items()}
_NAMES.update(
    {
        "date32[day]": "date32",
        "extension<arrow.uuid>": "uuid",
        "date64[ms]": "date64",
        "halffloat": "float16",
        "float": "float32",
        "double": "float64",
        "bool": "bool",
    }
)


def _format_item(field: pa.Field) -> str:
    return format_type(field.type) + ("" if field.nullable else " not null")


def format_type(dtype: pa.DataType) -> str:
    """The canonical contract spelling of an Arrow type (inverse of :func:`parse_type`)."""
    if pa.types.is_timestamp(dtype):
        return f"timestamp[{dtype.unit}, tz={dtype.tz}]" if dtype.tz else f"timestamp[{dtype.unit}]"
    if pa.types.is_duration(dtype):
        return f"duration[{dtype.unit}]"
    if pa.types.is_time32(dtype) or pa.types.is_time64(dtype):
        return f"{'time32' if pa.types.is_time32(dtype) else 'time64'}[{dtype.unit}]"
    if pa.types.is_decimal(dtype):
        return f"{_decimal_name(dtype)}({dtype.precision}, {dtype.scale})"
    if pa.types.is_fixed_size_binary(dtype):
        return f"fixed_size_binary[{dtype.byte_width}]"
    if pa.types.is_map(dtype):
        value = _format_item(dtype.item_field) + (", sorted" if dtype.keys_sorted else "")
        return f"map<{format_type(dtype.key_type)}, {value}>"
    if pa.types.is_fixed_size_list(dtype):
        return f"fixed_size_list<{_format_item(dtype.value_field)}>[{dtype.list_size}]"
    if pa.types.is_large_list(dtype):
        return f"large_list<{_format_item(dtype.value_field)}>"
    if pa.types.is_list(dtype):
        return f"list<{_format_item(dtype.value_field)}>"
    if pa.types.is_struct(dtype):
        inner = ", ".join(f"{_format_name(f.name)}: {_format_item(f)}" for f in dtype)
        return f"struct<{inner}>"
    if pa.types.is_dictionary(dtype):
        ordered = ", ordered" if dtype.ordered else ""
        return (
            f"dictionary<{format_type(dtype.index_type)}, {format_type(dtype.value_type)}{ordered}>"
        )
    name = _NAMES.get(str(dtype))
    if name is None:
        raise TypeSpecError(unsupported(dtype))
    return name


def unsupported(dtype: pa.DataType) -> str:
    """Why a type of a file cannot be a contract's, in one line (the type as Arrow names it,
    cut short: a union's or a struct's spelling can be long)."""
    shown = str(dtype).replace("\n", " ")
    shown = shown if len(shown) <= 120 else shown[:119] + "…"
    return f"type {shown} is not supported in contracts (no rule can check it)"


def _decimal_name(dtype: pa.DataType) -> str:
    bits = {4: 32, 8: 64, 16: 128, 32: 256}[dtype.byte_width]
    return f"decimal{bits}"


def _format_name(name: str) -> str:
    """A struct field's name: bare if an identifier, else quoted as a JSON string."""
    return name if _IDENTIFIER.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def normalize_type(text: str) -> str:
    return format_type(parse_type(text))


# -- type families used by rules ------------------------------------------------------------


def value_type(dtype: pa.DataType) -> pa.DataType:
    """The element type rules apply to: list items, dictionary values, else the type itself."""
    if pa.types.is_dictionary(dtype):
        return dtype.value_type
    if (
        pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_fixed_size_list(dtype)
    ):
        return value_type(dtype.value_type)
    return dtype


def is_numeric(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
    )


def is_temporal(dtype: pa.DataType) -> bool:
    return bool(pa.types.is_temporal(dtype))


def is_stringy(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or dtype == pa.string_view()
    )


def is_orderable(dtype: pa.DataType) -> bool:
    return is_numeric(dtype) or is_temporal(dtype)
