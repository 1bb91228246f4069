"""European and Korean CSV exports: delimiter, decimal comma and encoding detected from the
first bytes, said in words, forcible, and column names in any script end to end."""

from __future__ import annotations

import codecs
from pathlib import Path

import pyarrow as pa
import pytest

from fedpark.contracts import Declaration, validate_file
from fedpark.contracts.dialect import (
    SAMPLE_BYTES,
    CsvOptions,
    DialectOptionError,
    detect_dialect,
)
from fedpark.contracts.errors import DataError
from fedpark.contracts.infer import InferError, infer_contract
from fedpark.contracts.reader import open_source

GERMAN = "Zeit;Temperatur (°C);Drücke_bar;Maschine\n" + "".join(
    f"2026-01-01T00:{i:02d}:00;{20 + i % 5},{i % 10};1,{25 + i % 7};Presse-{i % 3 + 1}\n"
    for i in range(40)
)
TABS = GERMAN.replace(",", ".").replace(";", "\t")
PIPES = GERMAN.replace(",", ".").replace(";", "|")
KOREAN = "시간;온도;압력;설비\n" + "".join(
    f"2026-01-01T00:{i:02d}:00;{20 + i % 5},{i % 10};{i % 4};설비-{i % 2 + 1}\n" for i in range(40)
)


def _write(path: Path, text: str, encoding: str) -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("text", "encoding", "described"),
    [
        (GERMAN, "cp1252", "semicolon-separated, decimal comma, cp1252 (Western European)"),
        (KOREAN, "cp949", "semicolon-separated, decimal comma, cp949 (Korean)"),
        (KOREAN, "euc-kr", "semicolon-separated, decimal comma, cp949 (Korean)"),
        (GERMAN, "utf-8-sig", "semicolon-separated, decimal comma, UTF-8 with BOM"),
        (KOREAN, "utf-8", "semicolon-separated, decimal comma, UTF-8"),
        (TABS, "utf-8", "tab-separated, decimal point, UTF-8"),
        (PIPES, "cp1252", "pipe-separated, decimal point, cp1252 (Western European)"),
    ],
)
def test_the_dialect_is_detected_and_said(
    tmp_path: Path, text: str, encoding: str, described: str
) -> None:
    path = _write(tmp_path / "export.csv", text, encoding)
    assert detect_dialect(path).describe() == described
    source = open_source(path)
    assert source.dialect is not None and source.dialect.describe() == described
    names = source.schema.names
    assert names[1] in ("Temperatur (°C)", "온도")
    batch = next(source.batches(names, 1000))
    assert batch.num_rows == 40
    assert batch.column(1).type == pa.float64()
    assert batch.column(1).to_pylist()[:3] == [20.0, 21.1, 22.2]  # decimal commas as numbers


@pytest.mark.parametrize(
    ("header", "encoding"),
    [
        ("Größe;Größe_alt", "cp1252"),  # valid cp949 too, but as Hanja, not Hangul
        ("Temperatur (°C);Druck", "cp1252"),  # °C reads as one Hangul syllable in cp949
        ("온도;압력;Temperatur", "cp949"),
    ],
)
def test_cp949_is_told_from_cp1252_by_the_text(tmp_path: Path, header: str, encoding: str) -> None:
    row = ";".join("1" for _ in header.split(";"))
    path = _write(tmp_path / "head.csv", f"{header}\n{row}\n{row}\n", encoding)
    assert detect_dialect(path).encoding == encoding
    assert open_source(path).schema.names == header.split(";")


def test_quoted_cells_hold_the_delimiter(tmp_path: Path) -> None:
    text = 'Linie;Bemerkung;Wert\n"L1";"a; b";1,5\n"L2";"c;d";2,5\n'
    path = _write(tmp_path / "quoted.csv", text, "utf-8")
    assert detect_dialect(path).describe() == "semicolon-separated, decimal comma, UTF-8"
    source = open_source(path)
    assert next(source.batches(["Bemerkung", "Wert"], 10)).to_pydict() == {
        "Bemerkung": ["a; b", "c;d"],
        "Wert": [1.5, 2.5],
    }


def test_a_plain_csv_is_read_as_before(tmp_path: Path) -> None:
    path = _write(tmp_path / "plain.csv", "a,b\n1.5,2\n", "utf-8")
    assert detect_dialect(path).describe() == "comma-separated, decimal point, UTF-8"
    assert _write(tmp_path / "one.tsv", "a\n1\n", "utf-8").suffix == ".tsv"
    assert detect_dialect(tmp_path / "one.tsv").delimiter == "\t"  # one column: the suffix's


def test_forced_options_win_and_say_so(tmp_path: Path) -> None:
    path = _write(tmp_path / "export.csv", GERMAN, "cp1252")
    forced = CsvOptions.parse(delimiter="semicolon", decimal=",", encoding="latin-1")
    assert detect_dialect(path, forced).describe() == (
        "semicolon-separated (forced), decimal comma (forced), iso8859-1 (forced)"
    )
    # A forced decimal comma keeps the comma from being taken for the delimiter.
    only_decimal = detect_dialect(path, CsvOptions.parse(decimal="comma"))
    assert only_decimal.delimiter == ";"
    assert CsvOptions.parse("tab", "point", "EUC-KR").names() == {
        "delimiter": "tab",
        "decimal": "point",
        "encoding": "euc-kr",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"delimiter": "#"},
            "the delimiter must be one of: comma (,), semicolon (;), tab, pipe (|)",
        ),
        ({"decimal": "x"}, "the decimal mark must be point (.) or comma (,)"),
        (
            {"encoding": "klingon"},
            "unknown encoding; use a name Python knows, e.g. utf-8, cp1252, cp949, euc-kr",
        ),
        (
            {"delimiter": ",", "decimal": ","},
            "a decimal comma needs another delimiter than the comma",
        ),
    ],
)
def test_unknown_options_are_refused_in_fedparks_words(kwargs: dict, message: str) -> None:
    with pytest.raises(DialectOptionError) as raised:
        CsvOptions.parse(**kwargs)
    assert str(raised.value) == message


def test_detection_reads_the_first_bytes_only_and_later_bad_text_is_named(tmp_path: Path) -> None:
    """Deterministic from the sample; a byte past it that the encoding does not have is an
    error that names the encoding, never a value."""
    head = "a;b\n" + "1,5;x\n" * (SAMPLE_BYTES // 6 + 10)
    utf8 = tmp_path / "late.csv"
    utf8.write_bytes(head.encode() + b"2,5;\xfc\n")
    assert detect_dialect(utf8).encoding == "utf-8"
    with pytest.raises(DataError) as raised:
        validate_file(infer_contract(_small(tmp_path), contract_id="ab", owner="acme"), utf8)
    assert str(raised.value) == "late.csv column 'b' holds text that is not valid UTF-8"
    cp1252 = tmp_path / "late-1252.csv"
    cp1252.write_bytes("a;b\n1,5;ü\n".encode("cp1252") * 2 + head[4:].encode() + b"2,5;\x81\n")
    assert detect_dialect(cp1252).encoding == "cp1252"
    with pytest.raises(DataError) as raised:
        validate_file(infer_contract(_small(tmp_path), contract_id="ab", owner="acme"), cp1252)
    assert str(raised.value) == "late-1252.csv has text that is not valid cp1252"


def _small(tmp_path: Path) -> Path:
    return _write(tmp_path / "small.csv", "a;b\n1,5;x\n", "utf-8")


def test_text_in_no_known_encoding_asks_for_one(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(b"a;b\n1;\x81\x20\n")  # not UTF-8, cp949 or cp1252
    with pytest.raises(DataError) as raised:
        open_source(path)
    assert str(raised.value) == (
        "odd.csv has text in none of the encodings tried (UTF-8, cp949, cp1252); name its "
        "encoding with --encoding"
    )
    forced = open_source(path, csv_options=CsvOptions.parse(encoding="latin-1"))
    assert forced.schema.names == ["a", "b"]


def test_damaged_utf8_is_not_taken_for_cp1252(tmp_path: Path) -> None:
    """A UTF-8 file with a broken byte would decode as cp1252, its units turned to `Â°C`."""
    path = tmp_path / "damaged.csv"
    path.write_bytes("unit;value\n°C;1\n".encode() + b"\xff\xfe;2\n")
    with pytest.raises(DataError) as raised:
        open_source(path)
    assert str(raised.value) == (
        "damaged.csv has text that is not valid UTF-8 among text that is (a damaged file, or "
        "two encodings mixed); if it is not UTF-8, name its encoding with --encoding"
    )
    legacy = tmp_path / "legacy.csv"
    legacy.write_bytes("Größe;Temperatur (°C)\n1;2\n".encode("cp1252"))
    assert detect_dialect(legacy).encoding == "cp1252"


@pytest.mark.parametrize(("text", "encoding"), [(GERMAN, "cp1252"), (KOREAN, "cp949")])
def test_column_names_in_any_script_work_end_to_end(
    tmp_path: Path, text: str, encoding: str
) -> None:
    """infer → validate → the declaration a factory sends (its profile as it may leave)."""
    path = _write(tmp_path / "export.csv", text, encoding)
    draft = infer_contract(path, contract_id="line-export", owner="acme")
    names = [c.name for c in draft.columns]
    assert names == text.splitlines()[0].split(";")
    result = validate_file(draft, path)
    assert result.report.passed, result.report
    assert result.dialect is not None and result.dialect.encoding == encoding
    sent = Declaration.model_validate_json(result.declaration("line-3").model_dump_json())
    assert [c.name for c in sent.profile.columns] == names
    measured = sent.profile.column(names[1]).numeric
    assert measured is not None and measured.count == 40


def test_a_header_read_as_one_column_is_reported_not_a_crash(tmp_path: Path) -> None:
    """A semicolon export read as comma-separated has its whole header as one name, longer
    than a report holds: it is cut, never a model error."""
    header = ";".join(f"Sensor_{i}_Temperatur (°C)" for i in range(20))
    row = ";".join("1,5" for _ in range(20))
    path = _write(tmp_path / "wide.csv", f"{header}\n{row}\n", "cp1252")
    contract = infer_contract(path, contract_id="wide", owner="acme")
    forced = CsvOptions.parse(delimiter="comma")
    with pytest.raises(DataError) as raised:
        validate_file(contract, path, csv_options=forced)
    assert str(raised.value) == "wide.csv has 21 fields on line 2 where the header has 1"
    one_line = _write(tmp_path / "header-only.csv", header + "\n", "cp1252")
    report = validate_file(contract, one_line, csv_options=forced).report
    assert not report.passed
    [extra] = [d for d in report.schema_differences if d.kind == "extra"]
    assert len(extra.column) == 200 and extra.column.endswith("…")
    with pytest.raises(InferError) as refused:
        infer_contract(one_line, contract_id="wide", owner="acme", csv_options=forced)
    assert str(refused.value) == (
        f"header-only.csv: column #1's name is {len(header)} characters long, more than a "
        "contract's 200; if the file is a CSV whose header was read as one column, name its "
        "delimiter with --delimiter"
    )


def test_parquet_has_no_dialect(good_parquet: Path) -> None:
    assert open_source(good_parquet).dialect is None
    assert codecs.lookup("cp949").name == "cp949"
