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


@pytest.mark.parametrize(
    ("dtype", "text"),
    [
        (pa.null(), "null"),
        (pa.string_view(), "string_view"),
        (pa.binary_view(), "binary_view"),
        (pa.binary(32), "fixed_size_binary[32]"),
        (pa.uuid(), "uuid"),
        (pa.decimal32(9, 2), "decimal32(9, 2)"),
        (pa.decimal64(18, 0), "decimal64(18, 0)"),
        (pa.map_(pa.string(), pa.int64()), "map<string, int64>"),
        (
            pa.map_(pa.int32(), pa.field("v", pa.float16(), nullable=False), keys_sorted=True),
            "map<int32, float16 not null, sorted>",
        ),
        (
            pa.struct([("first-name", pa.string()), ("first name", pa.int8()), ("", pa.bool_())]),
            'struct<"first-name": string, "first name": int8, "": bool>',
        ),
        (
            pa.struct([('say "hi"\\', pa.int8()), ("ok_1", pa.int8())]),
            'struct<"say \\"hi\\"\\\\": int8, ok_1: int8>',
        ),
    ],
    ids=str,
)
def test_types_real_files_carry_print_canonically(dtype: pa.DataType, text: str) -> None:
    assert format_type(dtype) == text
    assert parse_type(text) == dtype


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("extension<arrow.uuid>", "uuid"),
        ("map<string, int64, keys_sorted>", "map<string, int64, sorted>"),
        ('struct<"plain": int8>', "struct<plain: int8>"),
    ],
)
def test_arrow_spellings_of_the_new_types_normalize(text: str, canonical: str) -> None:
    assert format_type(parse_type(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("decimal32(10, 2)", "precision from 1 to 9"),
        ("decimal64(19, 2)", "precision from 1 to 18"),
        ("fixed_size_binary[0]", "at least 1 byte"),
        ("map<list<int8>, int8>", "map keys"),
        ("dictionary<int8, string not null>", "cannot be 'not null'"),
        ('struct<"unterminated: int8>', "unexpected character"),
        ("struct<a-b: int8>", "unexpected character|field name"),
    ],
)
def test_bad_new_types_are_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(TypeSpecError, match=message):
        parse_type(text)


@pytest.mark.parametrize(
    "dtype",
    [
        pa.month_day_nano_interval(),
        pa.dense_union([pa.field("a", pa.int8())]),
        pa.run_end_encoded(pa.int32(), pa.string()),
        pa.list_view(pa.int8()),
        pa.json_(),
    ],
    ids=str,
)
def test_types_no_rule_checks_are_refused_naming_the_type(dtype: pa.DataType) -> None:
    with pytest.raises(TypeSpecError) as refused:
        format_type(dtype)
    assert (
        str(refused.value) == f"type {dtype} is not supported in contracts (no rule can check it)"
    )
