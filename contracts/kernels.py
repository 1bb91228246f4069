"""The types rules and profiles are computed in: Arrow's kernels lack some storage types.

``pyarrow.compute`` has no min/max, mean or is_in kernel for ``float16``, ``decimal32``,
``decimal64``, ``string_view`` or ``binary_view``, and none at all for the ``uuid`` extension
type. Each batch of such a column is cast (losslessly) to the type next to it that the
kernels know, so a contract keeps the file's own type while every rule and statistic runs.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa


def kernel_type(dtype: pa.DataType) -> pa.DataType:
    """The lossless stand-in for ``dtype`` that every rule's kernel accepts, nested types
    included (a list of float16 is checked as a list of float32)."""
    t = pa.types
    if t.is_float16(dtype):
        return pa.float32()
    if t.is_decimal(dtype) and dtype.byte_width < 16:
        return pa.decimal128(dtype.precision, dtype.scale)
    if dtype == pa.string_view():
        return pa.string()
    if dtype == pa.binary_view():
        return pa.binary()
    if isinstance(dtype, pa.BaseExtensionType):
        return kernel_type(dtype.storage_type)
    return with_children(dtype, kernel_type)


def with_children(dtype: pa.DataType, convert: Callable[[pa.DataType], pa.DataType]) -> pa.DataType:
    """``dtype`` with every child type converted (list items, struct fields, map keys and
    items, dictionary values; names and nullability kept); a type without children as is."""
    t = pa.types
    if t.is_list(dtype) or t.is_large_list(dtype) or t.is_fixed_size_list(dtype):
        item = dtype.value_field.with_type(convert(dtype.value_type))
        if t.is_fixed_size_list(dtype):
            return pa.list_(item, dtype.list_size)
        return pa.large_list(item) if t.is_large_list(dtype) else pa.list_(item)
    if t.is_map(dtype):
        value = dtype.item_field.with_type(convert(dtype.item_type))
        return pa.map_(convert(dtype.key_type), value, keys_sorted=dtype.keys_sorted)
    if t.is_struct(dtype):
        return pa.struct([f.with_type(convert(f.type)) for f in dtype])
    if t.is_dictionary(dtype):
        return pa.dictionary(dtype.index_type, convert(dtype.value_type), dtype.ordered)
    return dtype
