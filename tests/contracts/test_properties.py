"""Properties over generated Arrow schemas and tables (hypothesis, bounded and derandomized:
the same examples on every run; 15 a property in a developer's unit tier, 60 in CI, which
sets ``FEDPARK_PROPERTY_EXAMPLES``).

- every supported type is printed canonically and parses back to itself, and a contract's
  Arrow schema gives the same contract back;
- a table written as Parquet, Arrow IPC (file and stream) and, where CSV can hold it, CSV
  validates against the contract inferred from it, with no violation, and is declared;
- a type no contract holds, and a file cut short, are refused with a FedPark error in one
  line: never a traceback.
"""

from __future__ import annotations

import os
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fedpark.contracts import ContractError, validate_file
from fedpark.contracts.arrow import from_arrow_schema, to_arrow_schema
from fedpark.contracts.infer import infer_contract
from fedpark.contracts.kernels import with_children
from fedpark.contracts.types import format_type, parse_type

EXAMPLES = int(os.environ.get("FEDPARK_PROPERTY_EXAMPLES", "15"))
BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
UNITS = ("s", "ms", "us", "ns")

# -- types ----------------------------------------------------------------------------------

_PRIMITIVES = st.sampled_from(
    [
        pa.int8(), pa.int16(), pa.int32(), pa.int64(),
        pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64(),
        pa.float16(), pa.float32(), pa.float64(), pa.bool_(), pa.null(),
        pa.string(), pa.large_string(), pa.string_view(),
        pa.binary(), pa.large_binary(), pa.binary_view(), pa.uuid(),
        pa.date32(), pa.date64(), pa.time32("s"), pa.time32("ms"),
        pa.time64("us"), pa.time64("ns"),
    ]
)  # fmt: skip


@st.composite
def _decimals(draw: st.DrawFn) -> pa.DataType:
    make, limit = draw(
        st.sampled_from(
            [(pa.decimal32, 9), (pa.decimal64, 18), (pa.decimal128, 38), (pa.decimal256, 76)]
        )
    )
    precision = draw(st.integers(1, limit))
    return make(precision, draw(st.integers(0, precision)))


_SCALARS = st.one_of(
    _PRIMITIVES,
    _decimals(),
    st.integers(1, 32).map(pa.binary),
    st.builds(pa.timestamp, st.sampled_from(UNITS), st.sampled_from([None, "UTC", "+05:30"])),
    st.sampled_from(UNITS).map(pa.duration),
)
# Names a column or a struct field may have: spaces around, punctuation, any script.
NAMES = st.one_of(
    st.sampled_from(["first-name", "first name", " padded ", "온도", "Drücke (bar)", "a.b"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12),
)


def _nested(children: st.SearchStrategy[pa.DataType]) -> st.SearchStrategy[pa.DataType]:
    item = st.builds(
        lambda t, n: pa.field("item", t, nullable=n or pa.types.is_null(t)), children, st.booleans()
    )
    fields = st.lists(
        st.tuples(NAMES | st.just(""), children, st.booleans()),
        min_size=1,
        max_size=3,
        unique_by=lambda f: f[0],
    )
    keys = st.sampled_from([pa.string(), pa.int32(), pa.int64()])
    return st.one_of(
        item.map(pa.list_),
        item.map(pa.large_list),
        st.builds(pa.list_, item, st.integers(1, 3)),
        fields.map(
            lambda fs: pa.struct(
                [pa.field(n, t, nullable=b or pa.types.is_null(t)) for n, t, b in fs]
            )
        ),
        st.builds(
            lambda k, v, s: pa.map_(k, v.with_name("value"), keys_sorted=s),
            keys,
            item,
            st.booleans(),
        ),
    )


TYPES = st.one_of(
    st.recursive(_SCALARS, _nested, max_leaves=3),
    st.builds(
        lambda index: pa.dictionary(index, pa.string()),
        st.sampled_from([pa.int8(), pa.int16(), pa.int32(), pa.uint32()]),
    ),
)


# -- values ---------------------------------------------------------------------------------


def _storage(dtype: pa.DataType) -> pa.DataType:
    """The type to build a column's values in before casting (times as integers, ...)."""
    t = pa.types
    if t.is_timestamp(dtype) or t.is_duration(dtype) or t.is_time64(dtype) or t.is_date64(dtype):
        return pa.int64()
    if t.is_date32(dtype) or t.is_time32(dtype):
        return pa.int32()
    if t.is_float16(dtype):
        return pa.float32()
    if isinstance(dtype, pa.BaseExtensionType):
        return dtype.storage_type
    if t.is_dictionary(dtype) or dtype == pa.string_view():
        return pa.string()
    if dtype == pa.binary_view():
        return pa.binary()
    return with_children(dtype, _storage)


_DAY_MS = 86_400_000
_TIME_LIMITS = {"s": 86_399, "ms": _DAY_MS - 1, "us": _DAY_MS * 1000 - 1, "ns": _DAY_MS * 10**6 - 1}


def _values(dtype: pa.DataType, nullable: bool = True) -> st.SearchStrategy[Any]:
    found = _value(dtype)
    return st.none() | found if nullable and not _required_slots(dtype) else found


def _required_slots(dtype: pa.DataType) -> bool:
    """A null struct or fixed-size list still has child slots, null, which a non-nullable
    child refuses when pyarrow builds it: such values are generated non-null."""
    if pa.types.is_struct(dtype):
        return any(not f.nullable or _required_slots(f.type) for f in dtype)
    if pa.types.is_fixed_size_list(dtype):
        item = dtype.value_field
        return not item.nullable or _required_slots(item.type)
    return False


def _value(dtype: pa.DataType) -> st.SearchStrategy[Any]:
    t = pa.types
    if t.is_null(dtype):
        return st.none()
    if t.is_integer(dtype) and not t.is_dictionary(dtype):
        low, high = _int_limits(dtype)
        return st.integers(low, high)
    if t.is_floating(dtype):
        return st.floats(width={16: 16, 32: 32, 64: 64}[dtype.bit_width])
    if t.is_boolean(dtype):
        return st.booleans()
    if t.is_decimal(dtype):
        top = 10**dtype.precision - 1
        wide = Context(prec=100)  # the default context keeps 28 digits
        return st.integers(-top, top).map(lambda n: Decimal(n).scaleb(-dtype.scale, wide))
    if t.is_timestamp(dtype) or t.is_duration(dtype):
        return st.integers(-(10**12), 10**12)
    if t.is_date32(dtype):
        return st.integers(-100_000, 100_000)
    if t.is_date64(dtype):
        return st.integers(-100_000, 100_000).map(lambda days: days * _DAY_MS)
    if t.is_time32(dtype) or t.is_time64(dtype):
        return st.integers(0, _TIME_LIMITS[dtype.unit])
    if isinstance(dtype, pa.BaseExtensionType) or t.is_fixed_size_binary(dtype):
        width = 16 if isinstance(dtype, pa.BaseExtensionType) else dtype.byte_width
        return st.binary(min_size=width, max_size=width)
    if t.is_binary(dtype) or t.is_large_binary(dtype) or dtype == pa.binary_view():
        return st.binary(max_size=6)
    if t.is_dictionary(dtype):
        return st.sampled_from(["doing ", "done", "  new", "온도"])
    if t.is_list(dtype) or t.is_large_list(dtype) or t.is_fixed_size_list(dtype):
        item = _values(dtype.value_type, dtype.value_field.nullable)
        size = dtype.list_size if t.is_fixed_size_list(dtype) else None
        return st.lists(item, min_size=size or 0, max_size=size or 3)
    if t.is_struct(dtype):
        return st.fixed_dictionaries({f.name: _values(f.type, f.nullable) for f in dtype})
    if t.is_map(dtype):
        pairs = st.tuples(
            _value(dtype.key_type), _values(dtype.item_type, dtype.item_field.nullable)
        )
        return st.lists(pairs, max_size=3, unique_by=lambda kv: kv[0])
    return st.text(max_size=6)  # string, large_string, string_view


def _int_limits(dtype: pa.DataType) -> tuple[int, int]:
    bits = dtype.bit_width
    if pa.types.is_signed_integer(dtype):
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


@st.composite
def tables(draw: st.DrawFn, types: st.SearchStrategy[pa.DataType] = TYPES) -> pa.Table:
    names = draw(st.lists(NAMES, min_size=1, max_size=4, unique=True))
    rows = draw(st.integers(0, 6))
    arrays, fields = [], []
    for name in names:
        dtype = draw(types)
        nullable = draw(st.booleans()) or pa.types.is_null(dtype)
        values = draw(st.lists(_values(dtype, nullable), min_size=rows, max_size=rows))
        arrays.append(pa.array(values, _storage(dtype)).cast(dtype))
        fields.append(pa.field(name, dtype, nullable=nullable))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# -- writing --------------------------------------------------------------------------------


def _write(table: pa.Table, folder: Path, fmt: str) -> Path | None:
    """The table in ``fmt``, or None where the format cannot hold it (Parquet has no place
    for some types: then there is nothing to check)."""
    path = folder / {"parquet": "t.parquet", "ipc": "t.arrow", "stream": "t.arrows"}[fmt]
    try:
        if fmt == "parquet":
            pq.write_table(table, path)
        elif fmt == "ipc":
            with ipc.new_file(path, table.schema) as writer:
                writer.write_table(table)
        else:
            with ipc.new_stream(path, table.schema) as writer:
                writer.write_table(table)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return None
    return path


def _round_trips(path: Path) -> None:
    contract = infer_contract(path, contract_id="generated", owner="acme")
    result = validate_file(contract, path)
    report = result.report
    assert report.passed, (report.schema_differences, report.violations)
    assert report.violations == []
    declared = result.declaration("line-3")
    assert [c.name for c in declared.profile.columns] == [c.name for c in contract.columns]
    assert from_arrow_schema(to_arrow_schema(contract)) == contract


# -- properties -----------------------------------------------------------------------------


@BOUNDED
@given(TYPES)
def test_every_type_prints_canonically_and_parses_back(dtype: pa.DataType) -> None:
    text = format_type(dtype)
    assert parse_type(text) == dtype
    assert format_type(parse_type(text)) == text


@BOUNDED
@given(tables())
def test_a_written_table_meets_the_contract_inferred_from_it(
    tmp_path_factory: pytest.TempPathFactory, table: pa.Table
) -> None:
    folder = tmp_path_factory.mktemp("generated")
    written = [_write(table, folder, fmt) for fmt in ("parquet", "ipc", "stream")]
    assert any(written)
    for path in written:
        if path is not None:
            _round_trips(path)


_CSV_TEXT = st.text(
    st.characters(categories=("L", "Nd", "Zs"), exclude_characters="\u2028"), max_size=8
)
_CSV_NAMES = st.text(
    st.characters(categories=("L", "Nd"), max_codepoint=0x2FFF), min_size=1, max_size=10
)


@st.composite
def csv_tables(draw: st.DrawFn) -> pa.Table:
    names = draw(st.lists(_CSV_NAMES, min_size=1, max_size=4, unique_by=str.lower))
    rows = draw(st.integers(1, 6))
    columns = {}
    for name in names:
        kind = draw(st.sampled_from(["int", "float", "text", "bool", "empty"]))
        cell = {
            "int": st.integers(-(2**63), 2**63 - 1),
            "float": st.floats(allow_nan=False, allow_infinity=False),
            "text": _CSV_TEXT,
            "bool": st.booleans(),
            "empty": st.none(),
        }[kind]
        values = draw(st.lists(st.none() | cell, min_size=rows, max_size=rows))
        columns[name] = pa.array(values, pa.null() if kind == "empty" else None)
    return pa.table(columns)


@BOUNDED
@given(csv_tables())
def test_a_csv_file_meets_the_contract_inferred_from_it(
    tmp_path_factory: pytest.TempPathFactory, table: pa.Table
) -> None:
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    pacsv.write_csv(table, path)
    _round_trips(path)


_REFUSED = {
    "union": lambda n: pa.UnionArray.from_sparse(
        pa.array([0] * n, pa.int8()), [pa.array(range(n), pa.int64())]
    ),
    "interval": lambda n: pa.array([pa.MonthDayNano([1, 2, 3])] * n, pa.month_day_nano_interval()),
    "run_end_encoded": lambda n: pa.RunEndEncodedArray.from_arrays(
        pa.array([n] if n else [], pa.int32()), pa.array(["a"] if n else [], pa.string())
    ),
    "list_view": lambda n: pa.array([[1]] * n, pa.list_view(pa.int32())),
    "json": lambda n: pa.array(["{}"] * n, pa.string()).cast(pa.json_()),
}


@BOUNDED
@given(tables(_SCALARS), st.sampled_from(sorted(_REFUSED)), NAMES, st.integers(0, 4))
def test_a_type_no_contract_holds_is_refused_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, table: pa.Table, kind: str, name: str, rows: int
) -> None:
    assume(name not in table.column_names)
    table = table.slice(0, min(rows, table.num_rows))
    table = table.append_column(name, _REFUSED[kind](table.num_rows))
    path = _write(table, tmp_path_factory.mktemp("refused"), "ipc")
    assert path is not None
    with pytest.raises(ContractError) as refused:
        infer_contract(path, contract_id="generated", owner="acme")
    message = str(refused.value)
    assert "\n" not in message and "pydantic" not in message
    assert repr(name) in message and "not supported" in message


@BOUNDED
@given(tables(_SCALARS), st.sampled_from(["parquet", "ipc", "stream"]), st.floats(0, 1))
def test_a_file_cut_short_is_refused_in_one_line_or_read(
    tmp_path_factory: pytest.TempPathFactory, table: pa.Table, fmt: str, cut: float
) -> None:
    folder = tmp_path_factory.mktemp("cut")
    path = _write(table, folder, fmt)
    assume(path is not None)
    assert path is not None
    contract = infer_contract(path, contract_id="generated", owner="acme")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    try:
        validate_file(contract, path)
    except ContractError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(path.name)


def test_the_examples_are_bounded() -> None:
    # CI runs these on every push with 60; a larger budget is for a run by hand
    # (FEDPARK_PROPERTY_EXAMPLES), not for the suite.
    assert 1 <= BOUNDED.max_examples <= 60 and BOUNDED.derandomize
