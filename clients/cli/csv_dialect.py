"""The CSV options shared by the commands that read a factory's data file.

``--delimiter``, ``--decimal`` and ``--encoding`` force what is otherwise detected from a CSV
file's first bytes (see :mod:`fedpark.contracts.dialect`); ``factory join`` hands them on to
its ClientApps in the node config, so every run reads the file as the command line did.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fedpark.contracts.dialect import CsvDialect, CsvOptions

DelimiterOpt = Annotated[
    str | None,
    typer.Option(
        "--delimiter",
        help="CSV: the delimiter, comma, semicolon, tab or pipe (default: detected).",
    ),
]
DecimalOpt = Annotated[
    str | None,
    typer.Option("--decimal", help="CSV: the decimal mark, point or comma (default: detected)."),
]
EncodingOpt = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="CSV: the text encoding, e.g. utf-8, cp1252, cp949 (default: detected: UTF-8, "
        "else cp949 or cp1252).",
    ),
]


def csv_options(delimiter: str | None, decimal: str | None, encoding: str | None) -> CsvOptions:
    """The forced options, checked; a wrong one is a usage error that names the option."""
    from fedpark.contracts.dialect import CsvOptions, DialectOptionError

    try:
        return CsvOptions.parse(delimiter, decimal, encoding)
    except DialectOptionError as exc:
        hint = next(
            (f"--{name}" for name in ("delimiter", "decimal", "encoding") if name in str(exc)),
            None,
        )
        raise typer.BadParameter(str(exc), param_hint=hint) from None


def read_hint(data: Path, forced: CsvOptions) -> str:
    """`` (read as ...)`` for a CSV file that could not be read: a wrong delimiter or decimal
    mark shows as a wrong number of fields. Empty for other files."""
    from fedpark.contracts.dialect import detect_dialect
    from fedpark.contracts.errors import DataError
    from fedpark.contracts.reader import detect_format

    try:
        if detect_format(data) != "csv":
            return ""
        dialect = detect_dialect(data, forced)
    except DataError:
        return ""
    return (
        f" (read as {dialect.describe()}; if that is wrong, name it with --delimiter, "
        "--decimal or --encoding)"
    )


def read_as(dialect: CsvDialect | None) -> str | None:
    """How a CSV file was read, for a person: ``read as semicolon-separated, ...``."""
    return None if dialect is None else f"read as {dialect.describe()}"
