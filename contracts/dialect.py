"""CSV dialects: the delimiter, decimal mark and encoding a CSV file was written with.

A German Excel export is semicolon-separated with decimal commas in cp1252; a Korean one may
be in cp949. The dialect is detected from the file's first bytes only (a CSV file may be
larger than memory) and deterministically, so the factory's command line and its ClientApp
read a file the same way; a person can force any part of it (``--delimiter``, ``--decimal``,
``--encoding``). :meth:`CsvDialect.describe` says how a file was read, in words.

Pure Python (no pyarrow): the node config and the command line parse options with it.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from fedpark.contracts.errors import ReadProblem, UnreadableDataError

SAMPLE_BYTES = 256 << 10  # what detection reads of a file, whatever its size
SAMPLE_ROWS = 50

# Candidates in order of preference when more than one splits the sample evenly.
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_DELIMITER_NAMES = {**{name: char for char, name in DELIMITERS.items()}, "\\t": "\t"}
DECIMALS = {".": "point", ",": "comma"}
_DECIMAL_NAMES = {"dot": ".", "point": ".", "comma": ","}
# Tried, in this order of evidence, when a file is not UTF-8 (see _legacy_encoding).
LEGACY_ENCODINGS = ("cp949", "cp1252")
_ENCODING_WORDS = {
    "utf-8": "UTF-8",
    "cp1252": "cp1252 (Western European)",
    "cp949": "cp949 (Korean)",
    "utf-16": "UTF-16",
}
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+(?:[eE][+-]?\d+)?")
_DECIMAL_POINT = re.compile(r"[+-]?\d*\.\d+(?:[eE][+-]?\d+)?")


class DialectOptionError(ValueError):
    """A forced dialect option FedPark does not know (the message names the option)."""


@dataclass(frozen=True)
class CsvOptions:
    """What a person forced about a CSV file; None: detect it."""

    delimiter: str | None = None  # one of DELIMITERS
    decimal: str | None = None  # "." or ","
    encoding: str | None = None  # a Python codec name, normalized (cp1252, cp949, utf-8)

    @classmethod
    def parse(
        cls, delimiter: str | None = None, decimal: str | None = None, encoding: str | None = None
    ) -> CsvOptions:
        """Options as a person or a node config spells them: ``;`` or ``semicolon``,
        ``,`` or ``comma``, any encoding Python knows (``euc-kr``, ``latin-1``)."""
        options = cls(_delimiter(delimiter), _decimal(decimal), _encoding(encoding))
        if options.delimiter == options.decimal == ",":
            raise DialectOptionError("a decimal comma needs another delimiter than the comma")
        return options

    @property
    def forced(self) -> bool:
        return any(v is not None for v in (self.delimiter, self.decimal, self.encoding))

    def names(self) -> dict[str, str]:
        """The forced options by name (``semicolon``, ``comma``, ``cp1252``), as a node
        config carries them: words travel in Flower's quoted ``--node-config``, a tab not."""
        named = {
            "delimiter": DELIMITERS.get(self.delimiter or ""),
            "decimal": DECIMALS.get(self.decimal or ""),
            "encoding": self.encoding,
        }
        return {key: value for key, value in named.items() if value is not None}


def _delimiter(value: str | None) -> str | None:
    if value is None or value in DELIMITERS:
        return value
    found = _DELIMITER_NAMES.get(value.strip().lower())
    if found is None:
        raise DialectOptionError(
            "the delimiter must be one of: comma (,), semicolon (;), tab, pipe (|)"
        )
    return found


def _decimal(value: str | None) -> str | None:
    if value is None or value in DECIMALS:
        return value
    found = _DECIMAL_NAMES.get(value.strip().lower())
    if found is None:
        raise DialectOptionError("the decimal mark must be point (.) or comma (,)")
    return found


def _encoding(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        name = codecs.lookup(value.strip()).name
    except LookupError:
        raise DialectOptionError(
            "unknown encoding; use a name Python knows, e.g. utf-8, cp1252, cp949, euc-kr"
        ) from None
    return {"utf-8-sig": "utf-8", "euc_kr": "euc-kr"}.get(name, name.replace("_", "-"))


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is read: detected, or forced where ``forced`` names the part."""

    delimiter: str = ","
    decimal: str = "."
    encoding: str = "utf-8"
    bom: bool = False  # a UTF-8 byte order mark (Arrow skips it)
    forced: frozenset[str] = frozenset()

    def describe(self) -> str:
        """E.g. ``semicolon-separated, decimal comma, cp1252 (Western European)``."""
        encoding = _ENCODING_WORDS.get(self.encoding, self.encoding)
        parts = {
            "delimiter": f"{DELIMITERS.get(self.delimiter, 'custom')}-separated",
            "decimal": f"decimal {DECIMALS[self.decimal]}",
            "encoding": f"{encoding} with BOM" if self.bom else encoding,
        }
        return ", ".join(
            f"{text} (forced)" if key in self.forced else text for key, text in parts.items()
        )

    @property
    def python_encoding(self) -> str:
        """The codec to read the file's text with in Python (the BOM dropped)."""
        return "utf-8-sig" if self.bom else self.encoding

    @property
    def arrow_encoding(self) -> str:
        """Arrow reads UTF-8 itself (skipping a BOM) and transcodes anything else, streaming."""
        return "utf8" if self.encoding == "utf-8" else self.encoding


def detect_dialect(path: Path, options: CsvOptions | None = None) -> CsvDialect:
    """The dialect of the CSV file ``path`` from its first bytes, with ``options`` forced.

    Raises
    ------
    UnreadableDataError
        The file cannot be opened, or its text is in none of the encodings tried.
    """
    options = options or CsvOptions()
    try:
        with path.open("rb") as fh:
            head = fh.read(SAMPLE_BYTES)
            whole = not fh.read(1)
    except OSError:
        raise UnreadableDataError(ReadProblem.CANNOT_OPEN, path.name) from None
    bom = head.startswith(codecs.BOM_UTF8)
    forced = {k for k in ("delimiter", "decimal", "encoding") if getattr(options, k) is not None}
    encoding = options.encoding or _detect_encoding(head, whole, path.name)
    bom = bom and encoding == "utf-8"
    text = _decode(head[len(codecs.BOM_UTF8) if bom else 0 :], encoding, whole) or ""
    rows = _sample_rows(text, whole) or text  # or one line longer than the sample
    # A forced decimal comma rules the comma out as the delimiter.
    candidates = [d for d in DELIMITERS if not (d == "," and options.decimal == ",")]
    delimiter = options.delimiter or _detect_delimiter(rows, candidates, path.suffix.lower())
    decimal = options.decimal or _detect_decimal(rows, delimiter)
    return CsvDialect(delimiter, decimal, encoding, bom, frozenset(forced))


def _decode(data: bytes, encoding: str, whole: bool) -> str | None:
    """``data`` as text, or None if it is not in ``encoding`` (a sample may end inside a
    character: that is not held against it)."""
    try:
        return codecs.getincrementaldecoder(encoding)("strict").decode(data, final=whole)
    except (UnicodeDecodeError, LookupError):
        return None


def _detect_encoding(head: bytes, whole: bool, name: str) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8) or _decode(head, "utf-8", whole) is not None:
        return "utf-8"
    if _damaged_utf8(head):
        raise UnreadableDataError(ReadProblem.CSV_ENCODING, name)
    found = _legacy_encoding(head, whole)
    if found is None:
        raise UnreadableDataError(ReadProblem.CSV_UNKNOWN_ENCODING, name)
    return found


def _damaged_utf8(head: bytes) -> bool:
    """UTF-8 text with bytes that are not: as many well-formed multi-byte characters as
    broken ones. Read as cp1252 it would pass, every accented letter turned into two (``Â°C``),
    and break the contract's allowed values far from the damage; better said at once."""
    text = head.decode("utf-8", errors="replace")
    broken = len(re.findall("\ufffd+", text))  # a damaged stretch counts once
    well_formed = sum(1 for c in text if ord(c) >= 0x80 and c != "\ufffd")
    return well_formed > 0 and well_formed >= broken


def _legacy_encoding(head: bytes, whole: bool) -> str | None:
    """cp949 or cp1252 for a file that is not UTF-8, by the shape of its non-ASCII bytes.

    Both decode most byte strings, so the choice is made on evidence: Korean text in cp949
    is two bytes per syllable, both above 0x80, so its non-ASCII bytes come in runs and
    decode to Hangul; German or French text in cp1252 has single accented letters between
    ASCII ones (``Drücke``).
    """
    high = [b >= 0x80 for b in head]
    paired = sum(
        1
        for i, is_high in enumerate(high)
        if is_high and ((i > 0 and high[i - 1]) or (i + 1 < len(high) and high[i + 1]))
    )
    text = _decode(head, "cp949", whole)
    # Two accented letters in a row (``Größe``) decode in cp949 too, but as Hanja: Korean
    # text is mostly Hangul syllables.
    foreign = [c for c in text or "" if ord(c) >= 0x80]
    hangul = sum(1 for c in foreign if "\uac00" <= c <= "\ud7a3")
    korean = bool(foreign) and paired * 2 > sum(high) and hangul * 5 >= len(foreign) * 4
    for encoding in ("cp949",) if korean else ("cp1252", "cp949"):
        if _decode(head, encoding, whole) is not None:
            return encoding
    return None


def _sample_rows(text: str, whole: bool) -> str:
    """The sample's complete lines (the last may be cut off by the sample's end)."""
    if whole:
        return text
    cut = max(text.rfind("\n"), 0)
    return text[:cut]


def _split(rows: str, delimiter: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(rows), delimiter=delimiter, quotechar='"')
    out: list[list[str]] = []
    try:
        for fields in reader:
            if fields:
                out.append(fields)
            if len(out) > SAMPLE_ROWS:
                break
    except csv.Error:
        return []
    return out


def _detect_delimiter(rows: str, candidates: list[str], suffix: str) -> str:
    """The candidate that splits the header into most fields and every sampled row into as
    many; a single column (or no even split) falls back to the suffix's delimiter."""
    default = "\t" if suffix == ".tsv" else candidates[0]
    order = sorted(candidates, key=lambda d: d != default)
    best, width = default, 1
    for candidate in order:
        lines = _split(rows, candidate)
        if not lines:
            continue
        fields = len(lines[0])
        if fields > width and all(len(line) == fields for line in lines):
            best, width = candidate, fields
    return best


def _detect_decimal(rows: str, delimiter: str) -> str:
    """A comma when number cells with a decimal comma outnumber those with a point (never
    with a comma delimiter: there the comma separates cells)."""
    if delimiter == ",":
        return "."
    lines = _split(rows, delimiter)[1:]
    cells = [cell.strip() for line in lines for cell in line]
    commas = sum(1 for cell in cells if _DECIMAL_COMMA.fullmatch(cell))
    points = sum(1 for cell in cells if _DECIMAL_POINT.fullmatch(cell))
    return "," if commas > points else "."
