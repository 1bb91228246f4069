from __future__ import annotations

import pyarrow as pa
import pytest
from samples import ALL_TYPES

from fedpark.contracts.types import TypeSpecError, format_type, parse_type


@pytest.mark.parametrize("dtype", ALL_TYPES, ids=str)
def test_every_type_round_trips(dtype: pa.DataType) -> None:
    text = format_type(dtype)
    assert parse_type(text) == dtype
    assert format_type(parse_type(text)) == text


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("double", "float64"),
        ("float", "float32"),
        ("utf8", "string"),
        ("boolean", "bool"),
        ("decimal(5,1)", "decimal128(5, 1)"),
        ("date32[day]", "date32"),
        ("list<item: float>", "list<float32>"),
        ("TIMESTAMP[MS]", "timestamp[ms]"),
    ],
)
def test_aliases_normalize(alias: str, canonical: str) -> None:
    assert format_type(parse_type(alias)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("int33", "unknown type"),
        ("timestamp[xs]", "unit must be"),
        ("list<int32", "ends too early"),
        ("struct<a: int8, a: int8>", "appears twice"),
        ("decimal128(50, 2)", "precision"),
        ("timestamp[s, tz=Mars/Base]", "unknown time zone"),
        ("dictionary<string, string>", "integer"),
        ("int32 extra", "unexpected"),
        ("fixed_size_list<int8>[0]", "at least 1"),
        ("", "ends too early"),
    ],
)
def test_bad_types_are_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(TypeSpecError, match=message):
        parse_type(text)
