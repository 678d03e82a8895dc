"""The Logica Omsorg export (specs/legacy-logica-export.md): reading its four fixed-width CP850
files as they come, and each record to its canonical document or a rejection with a reason."""

from __future__ import annotations

import datetime as dt
import random
import tempfile
import tracemalloc
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.legacy_export import (
    FILES,
    MAX_LINE_BYTES,
    ExportFile,
    Header,
    NoteLine,
    Record,
    Rejection,
    key_of,
    parse,
)
from core.errors import Rejected
from schemas.identity import Personnummer, generate_personnummer
from schemas.legacy import LegacyAddress, LegacyCase, LegacyDecision, LegacyPerson

EXPORT = dt.date(2026, 3, 2)
STOCKHOLM = ZoneInfo("Europe/Stockholm")

LAYOUT = {  # the contract's columns, as (field, width) from column 1
    "PERS.DAT": [
        ("type", 2),
        ("personnummer", 11),
        ("last_name", 30),
        ("first_names", 30),
        ("street", 35),
        ("postcode", 5),
        ("city", 20),
        ("protected", 1),
        ("died", 6),
    ],
    "ARENDE.DAT": [
        ("type", 2),
        ("case_number", 10),
        ("personnummer", 11),
        ("opened", 6),
        ("closed", 6),
        ("area", 3),
        ("officer", 6),
    ],
    "BESLUT.DAT": [
        ("type", 2),
        ("decision_id", 12),
        ("case_number", 10),
        ("service_code", 8),
        ("decided", 6),
        ("valid_from", 6),
        ("valid_to", 6),
        ("hours", 5),
        ("status", 1),
    ],
    "JOURNAL.DAT": [
        ("type", 2),
        ("note_id", 12),
        ("case_number", 10),
        ("date", 6),
        ("time", 4),
        ("signature", 6),
        ("continuation", 3),
        ("text", 60),
    ],
}
WIDTH = {file: sum(width for _, width in fields) for file, fields in LAYOUT.items()}


def born(day: dt.date, *, coordination: bool = False, seed: int = 1) -> Personnummer:
    return generate_personnummer(random.Random(seed), born_from=day, born_to=day, coordination=coordination)


def ten(number: Personnummer, separator: str = "-") -> str:
    """The export's form YYMMDD-NNNC (or with '+')."""
    return number.digits[2:8] + separator + number.digits[8:]


PNR = born(dt.date(1981, 4, 5))
DEFAULTS = {
    "PERS.DAT": dict(
        type="01",
        personnummer=ten(PNR),
        last_name="Andersson",
        first_names="Karin Maria",
        street="Storgatan 1",
        postcode="17831",
        city="Ekerö",
        protected=" ",
        died="",
    ),
    "ARENDE.DAT": dict(
        type="02",
        case_number="0002000001",
        personnummer=ten(PNR),
        opened="240115",
        closed="",
        area="ÄO",
        officer="ABC123",
    ),
    "BESLUT.DAT": dict(
        type="03",
        decision_id="D00000010001",
        case_number="0002000001",
        service_code="HT-OMS",
        decided="240120",
        valid_from="240201",
        valid_to="251231",
        hours="01250",
        status="B",
    ),
    "JOURNAL.DAT": dict(
        type="04",
        note_id="J00000000001",
        case_number="0002000001",
        date="240116",
        time="0930",
        signature="ABC123",
        continuation="001",
        text="Hembesök. Brukaren önskar hjälp med inköp.",
    ),
}


def cells(file: str, **values: str | bytes) -> dict[str, bytes]:
    """Each field's bytes: text encoded CP850 and padded with spaces; bytes as they are."""
    out = {}
    for name, width in LAYOUT[file]:
        value = {**DEFAULTS[file], **values}[name]
        if isinstance(value, str):
            value = value.encode("cp850").ljust(width)
            assert len(value) == width, (name, value)
        out[name] = value
    return out


def line(file: str, **values: str | bytes) -> bytes:
    """One fixed-width record, without its line end."""
    return b"".join(cells(file, **values).values())


def header(file: str, date: str = "20260302", system: str = "LOGOMS41") -> bytes:
    return f"00{date}{system:<8}{file:<12}".encode("cp850")


def trailer(count: int) -> bytes:
    return f"99{count:09d}".encode()


def write(folder: Path, file: str, lines: list[bytes], end: bytes = b"\r\n", name: str | None = None) -> Path:
    path = folder / (name or file)
    path.write_bytes(b"".join(one + end for one in lines))
    return path


def read(path: Path) -> tuple[ExportFile, list[Record]]:
    with ExportFile(path) as export:
        return export, list(export)


def record(file: str, raw: bytes, after_trailer: bool = False) -> Record:
    return Record(file, 2, raw, after_trailer)


def document(file: str, **values: str | bytes):
    parsed = parse(record(file, line(file, **values)), EXPORT)
    assert isinstance(parsed, tuple), parsed
    return parsed[1]


def rejection(file: str, raw: bytes) -> Rejection:
    parsed = parse(record(file, raw), EXPORT)
    assert isinstance(parsed, Rejection), parsed
    return parsed


# --- a small export, end to end ------------------------------------------------------------------


def test_a_small_export_read_end_to_end(tmp_path):
    old = born(dt.date(1921, 5, 4), seed=2)
    records = {
        "PERS.DAT": [line("PERS.DAT"), line("PERS.DAT", personnummer=ten(old, "+"), last_name="Öberg")],
        "ARENDE.DAT": [line("ARENDE.DAT"), line("ARENDE.DAT", case_number="0002000002", area="lss")],
        "BESLUT.DAT": [line("BESLUT.DAT")],
        "JOURNAL.DAT": [line("JOURNAL.DAT"), line("JOURNAL.DAT", continuation="002", text="Fortsättning.")],
    }
    for file, lines in records.items():
        write(tmp_path, file, [header(file), *lines, trailer(len(lines))])

    documents = {}
    for file in FILES:
        export, read_records = read(tmp_path / file)
        assert export.header == Header(export_date=EXPORT, system="LOGOMS41", file_name=file)
        assert [(r.file, r.line, r.raw, r.after_trailer) for r in read_records] == [
            (file, number, raw, False) for number, raw in enumerate(records[file], start=2)
        ]
        assert (export.trailer_count, export.trailer_line) == (len(records[file]), len(records[file]) + 2)
        documents[file] = [parse(r, export.header.export_date) for r in read_records]

    (key, person), (old_key, centenarian) = documents["PERS.DAT"]
    assert key == ten(PNR) and old_key == ten(old, "+")
    assert person == LegacyPerson(
        personnummer=PNR,
        last_name="Andersson",
        first_names="Karin Maria",
        address=LegacyAddress(street="Storgatan 1", postcode="17831", city="Ekerö"),
    )
    assert centenarian.personnummer.digits == old.digits and centenarian.personnummer.digits.startswith("1921")
    assert [key for key, _ in documents["ARENDE.DAT"]] == ["0002000001", "0002000002"]
    assert [case.area for _, case in documents["ARENDE.DAT"]] == ["ÄO", "LSS"]
    ((key, decision),) = documents["BESLUT.DAT"]
    assert key == "D00000010001" and decision == LegacyDecision(
        decision_id="D00000010001",
        case_number="0002000001",
        service_code="HT-OMS",
        decided=dt.date(2024, 1, 20),
        valid_from=dt.date(2024, 2, 1),
        valid_to=dt.date(2025, 12, 31),
        hours_per_month=Decimal("12.50"),
        status="granted",
    )
    assert [key for key, _ in documents["JOURNAL.DAT"]] == ["J00000000001/001", "J00000000001/002"]
    assert documents["JOURNAL.DAT"][0][1] == NoteLine(
        note_id="J00000000001",
        case_number="0002000001",
        written=dt.datetime(2024, 1, 16, 9, 30, tzinfo=STOCKHOLM),
        signature="ABC123",
        continuation=1,
        text="Hembesök. Brukaren önskar hjälp med inköp.",
    )


# --- the happy path of each record type ----------------------------------------------------------


def test_persons():
    old = born(dt.date(1921, 5, 4), seed=2)
    assert document("PERS.DAT", personnummer=ten(old, "+")).personnummer.digits == old.digits
    assert document("PERS.DAT", personnummer=ten(old, "-")).personnummer.digits == "20" + old.digits[2:]

    coordination = born(dt.date(1990, 7, 12), coordination=True)
    person = document("PERS.DAT", personnummer=ten(coordination))
    assert person.personnummer.digits == coordination.digits == "199007" + "72" + coordination.digits[8:]
    assert person.personnummer.is_coordination

    for flag in ("S", "s"):
        protected = document("PERS.DAT", protected=flag)
        assert protected.protected_identity is True and protected.address is None
        assert "Storgatan" not in protected.model_dump_json()

    assert document("PERS.DAT", died="251224").died == dt.date(2025, 12, 24)
    assert document("PERS.DAT", died="000000").died is None
    assert document("PERS.DAT", died="").died is None
    assert document("PERS.DAT", street="", postcode="", city="").address is None
    assert document("PERS.DAT", postcode="").address == LegacyAddress(street="Storgatan 1", postcode="", city="Ekerö")
    assert document("PERS.DAT", first_names="", last_name="  Lind").model_dump(
        include={"first_names", "last_name"}
    ) == {
        "first_names": "",
        "last_name": "Lind",
    }


def test_cases():
    case = document("ARENDE.DAT", area="äo", closed="000000")
    assert case == LegacyCase(
        case_number="0002000001",
        personnummer=PNR,
        opened=dt.date(2024, 1, 15),
        closed=None,
        area="ÄO",
        officer="ABC123",
    )
    assert [document("ARENDE.DAT", area=area).area for area in ("lss", "Ifo", "SOP", " ÄO")] == [
        "LSS",
        "IFO",
        "SOP",
        "ÄO",
    ]
    assert document("ARENDE.DAT", closed="250630").closed == dt.date(2025, 6, 30)
    assert document("ARENDE.DAT", closed="240115").closed == dt.date(2024, 1, 15)  # the day it opened


def test_decisions():
    assert document("BESLUT.DAT").hours_per_month == Decimal("12.50")
    assert document("BESLUT.DAT", hours="00000").hours_per_month == Decimal("0")
    assert document("BESLUT.DAT", hours="99999").hours_per_month == Decimal("999.99")
    statuses = {flag: document("BESLUT.DAT", status=flag).status for flag in "BADbad"}
    assert statuses == {"B": "granted", "A": "refused", "D": "partly_granted"} | {
        "b": "granted",
        "a": "refused",
        "d": "partly_granted",
    }
    assert document("BESLUT.DAT", service_code="ht-oms").service_code == "HT-OMS"
    missing = document("BESLUT.DAT", decided="000000", valid_from="      ", valid_to="")
    assert (missing.decided, missing.valid_from, missing.valid_to) == (None, None, None)


@pytest.mark.parametrize(
    ("written", "date"),
    [
        ("991231", dt.date(1999, 12, 31)),
        ("300101", dt.date(2030, 1, 1)),
        ("460302", dt.date(2046, 3, 2)),  # exactly 20 years after the export
        ("460303", dt.date(1946, 3, 3)),  # a day more
        ("470101", dt.date(1947, 1, 1)),
        ("000229", dt.date(2000, 2, 29)),
    ],
)
def test_a_date_is_placed_at_most_20_years_after_the_export(written, date):
    assert document("BESLUT.DAT", decided=written, valid_to="").decided == date


def test_note_lines():
    line_ = document("JOURNAL.DAT", continuation="012", text="  indented, then spaces   ")
    assert line_.continuation == 12 and line_.text == "  indented, then spaces"
    assert line_.written == dt.datetime(2024, 1, 16, 9, 30, tzinfo=STOCKHOLM)
    assert line_.written.utcoffset() == dt.timedelta(hours=1)
    assert document("JOURNAL.DAT", date="240716", time="2359").written.utcoffset() == dt.timedelta(hours=2)
    assert document("JOURNAL.DAT", date="000000", time="0000").written is None
    assert document("JOURNAL.DAT", date="", time="").written is None
    assert document("JOURNAL.DAT", text="").text == ""
    key, _ = parse(record("JOURNAL.DAT", line("JOURNAL.DAT", continuation="002")), EXPORT)
    assert key == "J00000000001/002"


def test_trailing_spaces_after_the_layout_are_no_trailing_characters():
    assert isinstance(parse(record("PERS.DAT", line("PERS.DAT") + b"    "), EXPORT), tuple)


# --- each reason ---------------------------------------------------------------------------------

WRONG_CHECK_DIGIT = ten(PNR)[:-1] + str((int(ten(PNR)[-1]) + 1) % 10)


@pytest.mark.parametrize(
    ("file", "raw", "reason"),
    [
        ("PERS.DAT", line("ARENDE.DAT"), "record type '02' does not belong in PERS.DAT"),
        ("JOURNAL.DAT", b"", "empty line"),
        ("PERS.DAT", line("PERS.DAT")[:100], "record cut short"),
        ("JOURNAL.DAT", line("JOURNAL.DAT")[:-1], "record cut short"),
        ("PERS.DAT", line("PERS.DAT") + b"  x", "trailing characters after column 140"),
        ("BESLUT.DAT", line("BESLUT.DAT") + b"\x1a", "trailing characters after column 56"),
        ("PERS.DAT", line("PERS.DAT", last_name="An\x01dersson"), "not valid text in last name"),
        ("PERS.DAT", line("PERS.DAT", first_names="Karin\tMaria"), "not valid text in first names"),
        ("JOURNAL.DAT", line("JOURNAL.DAT", text="Hem\x00besök"), "not valid text in text"),
        ("PERS.DAT", line("PERS.DAT", personnummer=WRONG_CHECK_DIGIT), "invalid personnummer: wrong check digit"),
        ("PERS.DAT", line("PERS.DAT", personnummer="811331-1234"), "invalid personnummer: impossible date 1981-13-31"),
        ("ARENDE.DAT", line("ARENDE.DAT", personnummer="000000-0000"), "invalid personnummer: 000000-0000"),
        ("PERS.DAT", line("PERS.DAT", personnummer=""), "missing personnummer"),
        ("PERS.DAT", line("PERS.DAT", last_name=""), "missing last name"),
        ("PERS.DAT", line("PERS.DAT", protected="X"), "unknown protected identity flag 'X'"),
        ("PERS.DAT", line("PERS.DAT", postcode="178 3"), "postcode is not five digits"),
        ("PERS.DAT", line("PERS.DAT", died="260231"), "impossible death date 260231"),
        ("PERS.DAT", line("PERS.DAT", died="26-2-3"), "death date '26-2-3' is not YYMMDD"),
        ("ARENDE.DAT", line("ARENDE.DAT", case_number=""), "missing case number"),
        ("ARENDE.DAT", line("ARENDE.DAT", opened="000000"), "missing opened date"),
        ("ARENDE.DAT", line("ARENDE.DAT", opened="      "), "missing opened date"),
        ("ARENDE.DAT", line("ARENDE.DAT", opened="241301"), "impossible opened date 241301"),
        ("ARENDE.DAT", line("ARENDE.DAT", closed="240114"), "closed before opened"),
        ("ARENDE.DAT", line("ARENDE.DAT", area="XYZ"), "unknown area 'XYZ'"),
        ("ARENDE.DAT", line("ARENDE.DAT", area=""), "missing area"),
        (
            "ARENDE.DAT",
            line("ARENDE.DAT", case_number="0002/00001"),
            "case number: String should match pattern '^[0-9A-Za-z-]{1,10}$'",
        ),
        ("BESLUT.DAT", line("BESLUT.DAT", decision_id=""), "missing decision id"),
        ("BESLUT.DAT", line("BESLUT.DAT", hours="12.50"), "hours are not a number"),
        ("BESLUT.DAT", line("BESLUT.DAT", hours="     "), "hours are not a number"),
        ("BESLUT.DAT", line("BESLUT.DAT", status="X"), "unknown status 'X'"),
        ("BESLUT.DAT", line("BESLUT.DAT", valid_to="240131"), "valid to before valid from"),
        ("BESLUT.DAT", line("BESLUT.DAT", valid_from="240230"), "impossible valid from date 240230"),
        (
            "BESLUT.DAT",
            line("BESLUT.DAT", service_code="HT_OMS"),
            "service code: String should match pattern '^[A-ZÅÄÖ0-9][A-ZÅÄÖ0-9-]{0,7}$'",
        ),
        ("JOURNAL.DAT", line("JOURNAL.DAT", time="2561"), "impossible time 2561"),
        ("JOURNAL.DAT", line("JOURNAL.DAT", time="9:30"), "time '9:30' is not HHMM"),
        ("JOURNAL.DAT", line("JOURNAL.DAT", time=""), "missing time"),
        ("JOURNAL.DAT", line("JOURNAL.DAT", continuation="00A"), "continuation is not a number"),
        (
            "JOURNAL.DAT",
            line("JOURNAL.DAT", continuation="000"),
            "continuation is 000, the first line of a note is 001",
        ),
        ("JOURNAL.DAT", line("JOURNAL.DAT", note_id="J.1"), "note id: String should match pattern"),
    ],
)
def test_each_reason(file, raw, reason):
    assert rejection(file, raw).reason.startswith(reason)


def test_after_the_trailer():
    assert parse(record("PERS.DAT", line("PERS.DAT"), after_trailer=True), EXPORT) == Rejection(
        "after the trailer", ten(PNR)
    )


@pytest.mark.parametrize("byte", range(0x20))
def test_control_bytes_in_a_name_are_not_valid_text(byte):
    raw = line("PERS.DAT", last_name=b"And" + bytes([byte]) + b"ersson".ljust(26))
    assert rejection("PERS.DAT", raw) == Rejection("not valid text in last name", ten(PNR))


def test_a_rejection_carries_the_key_as_far_as_it_could_be_read():
    assert rejection("PERS.DAT", line("PERS.DAT", personnummer=WRONG_CHECK_DIGIT)).key == WRONG_CHECK_DIGIT
    assert rejection("PERS.DAT", line("PERS.DAT")[:20]).key == ten(PNR)
    assert rejection("PERS.DAT", line("PERS.DAT")[:12]).key is None
    assert rejection("PERS.DAT", line("ARENDE.DAT")).key is None
    assert rejection("JOURNAL.DAT", line("JOURNAL.DAT", time="2561", continuation="003")).key == "J00000000001/003"


def test_key_of():
    assert key_of(record("PERS.DAT", line("PERS.DAT"))) == ten(PNR)
    assert key_of(record("ARENDE.DAT", line("ARENDE.DAT", case_number="A-17"))) == "A-17"
    assert key_of(record("BESLUT.DAT", line("BESLUT.DAT"))) == "D00000010001"
    assert key_of(record("JOURNAL.DAT", line("JOURNAL.DAT", continuation="002"))) == "J00000000001/002"
    assert key_of(record("JOURNAL.DAT", line("JOURNAL.DAT")[:42])) is None  # the continuation is cut
    assert key_of(record("JOURNAL.DAT", line("JOURNAL.DAT")[:43])) == "J00000000001/001"
    assert key_of(record("ARENDE.DAT", line("ARENDE.DAT", case_number=""))) is None
    assert key_of(record("PERS.DAT", b"01")) is None
    assert key_of(record("OTHER.DAT", line("PERS.DAT"))) is None


# --- the file as it comes --------------------------------------------------------------------------


def test_a_last_line_cut_short_without_a_line_end(tmp_path):
    first, cut = line("PERS.DAT"), line("PERS.DAT", last_name="Berg")[:80]
    path = tmp_path / "PERS.DAT"
    path.write_bytes(header("PERS.DAT") + b"\r\n" + first + b"\r\n" + cut)
    export, records = read(path)
    assert [(r.line, r.raw) for r in records] == [(2, first), (3, cut)]
    assert (export.trailer_count, export.trailer_line) == (None, None)
    assert parse(records[1], EXPORT) == Rejection("record cut short", ten(PNR))


def test_a_trailer_whose_count_is_wrong_is_reported_as_it_is(tmp_path):
    export, records = read(write(tmp_path, "PERS.DAT", [header("PERS.DAT"), line("PERS.DAT"), trailer(7)]))
    assert len(records) == 1 and (export.trailer_count, export.trailer_line) == (7, 3)


def test_no_trailer(tmp_path):
    export, records = read(write(tmp_path, "BESLUT.DAT", [header("BESLUT.DAT"), line("BESLUT.DAT")]))
    assert [r.line for r in records] == [2]
    assert (export.trailer_count, export.trailer_line) == (None, None)


def test_garbage_after_the_trailer(tmp_path):
    lines = [header("ARENDE.DAT"), line("ARENDE.DAT"), trailer(1), line("ARENDE.DAT"), b"\x1a", trailer(1)]
    export, records = read(write(tmp_path, "ARENDE.DAT", lines))
    assert [(r.line, r.after_trailer) for r in records] == [(2, False), (4, True), (5, True), (6, True)]
    assert (export.trailer_count, export.trailer_line) == (1, 3)
    assert [parse(r, EXPORT) for r in records[1:]] == [
        Rejection("after the trailer", "0002000001"),
        Rejection("after the trailer", None),
        Rejection("after the trailer", None),
    ]


@pytest.mark.parametrize("text", [b"99000000001x", b"9900000001", b"99 00000001"])
def test_a_line_that_only_looks_like_a_trailer_is_a_record(tmp_path, text):
    export, records = read(write(tmp_path, "PERS.DAT", [header("PERS.DAT"), text]))
    assert [r.raw for r in records] == [text] and export.trailer_count is None
    assert rejection("PERS.DAT", text).reason == "record type '99' does not belong in PERS.DAT"


def test_a_trailer_padded_with_spaces(tmp_path):
    export, records = read(write(tmp_path, "PERS.DAT", [header("PERS.DAT"), line("PERS.DAT"), trailer(1) + b" " * 20]))
    assert len(records) == 1 and export.trailer_count == 1


def test_bytes_0x00_to_0x1f_inside_a_name_in_a_file(tmp_path):
    names = [b"An" + bytes([byte]) + b"dersson" for byte in range(0x20) if byte != 0x0A]
    lines = [line("PERS.DAT", last_name=name.ljust(30)) for name in names]
    export, records = read(write(tmp_path, "PERS.DAT", [header("PERS.DAT"), *lines, trailer(len(lines))]))
    assert [r.raw for r in records] == lines and export.trailer_count == len(lines)
    assert {parse(r, EXPORT).reason for r in records} == {"not valid text in last name"}


def test_a_line_feed_inside_a_name_splits_the_record_and_both_parts_are_rejected(tmp_path):
    raw = line("PERS.DAT", last_name=b"An\ndersson".ljust(30))
    export, records = read(write(tmp_path, "PERS.DAT", [header("PERS.DAT"), raw, trailer(1)]))
    assert [r.raw for r in records] == raw.split(b"\n") and export.trailer_count == 1
    assert [parse(r, EXPORT).reason for r in records] == [
        "record cut short",
        "record type 'de' does not belong in PERS.DAT",
    ]


def test_line_ends_bare_lf_and_a_missing_last_one_lose_or_merge_nothing(tmp_path):
    lines = [line("PERS.DAT", last_name=name) for name in ("Ek", "Ås", "Al")]
    path = tmp_path / "PERS.DAT"
    path.write_bytes(header("PERS.DAT") + b"\n" + lines[0] + b"\r\n" + lines[1] + b"\n" + lines[2])
    _, records = read(path)
    assert [(r.line, r.raw) for r in records] == [(2, lines[0]), (3, lines[1]), (4, lines[2])]
    assert [parse(r, EXPORT)[1].last_name for r in records] == ["Ek", "Ås", "Al"]


def test_a_final_line_end_is_no_record_but_a_blank_line_is(tmp_path):
    lines = [header("PERS.DAT"), line("PERS.DAT"), b"", line("PERS.DAT"), trailer(2)]
    export, records = read(write(tmp_path, "PERS.DAT", lines))
    assert [(r.line, r.raw) for r in records] == [(2, lines[1]), (3, b""), (4, lines[3])]
    assert parse(records[1], EXPORT) == Rejection("empty line")
    assert export.trailer_line == 5


def test_a_line_longer_than_any_record_keeps_its_start_and_the_next_record_is_whole(tmp_path):
    long = line("PERS.DAT") + b"x" * (3 * MAX_LINE_BYTES)
    _, records = read(write(tmp_path, "PERS.DAT", [header("PERS.DAT"), long, line("PERS.DAT"), trailer(2)]))
    assert [len(r.raw) for r in records] == [MAX_LINE_BYTES, WIDTH["PERS.DAT"]]
    assert [r.line for r in records] == [2, 3]
    assert parse(records[0], EXPORT).reason == "trailing characters after column 140"


def test_the_path_name_may_be_lower_case(tmp_path):
    export, records = read(write(tmp_path, "PERS.DAT", [header("PERS.DAT"), line("PERS.DAT")], name="pers.dat"))
    assert export.header.file_name == "PERS.DAT" and records[0].file == "PERS.DAT"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "empty file"),
        (b"01" + line("PERS.DAT")[2:] + b"\r\n", "record type '01', expected '00'"),
        (header("PERS.DAT", date="20260230") + b"\r\n", "export date '20260230' is not a date YYYYMMDD"),
        (header("PERS.DAT", date="2026-3-2") + b"\r\n", "export date '2026-3-2' is not a date YYYYMMDD"),
        (header("ARENDE.DAT") + b"\r\n", "the header is for 'ARENDE.DAT', not PERS.DAT"),
        (header("PERS.DAT")[:18] + b"\r\n", "the header is for '', not PERS.DAT"),
        (header("PERS.DAT") + b"junk\r\n", "characters after column 30"),
        (header("PERS.DAT") + b"\r" + line("PERS.DAT") + b"\r" + trailer(1), "characters after column 30"),
    ],
)
def test_a_bad_header_rejects_the_file_naming_line_1(tmp_path, content, says):
    path = tmp_path / "PERS.DAT"
    path.write_bytes(content)
    with pytest.raises(Rejected) as caught:
        ExportFile(path).__enter__()
    assert caught.value.where == "line 1" and says in caught.value.reason, caught.value


def test_a_header_with_its_name_field_trimmed_and_no_data(tmp_path):
    path = tmp_path / "JOURNAL.DAT"
    path.write_bytes(header("JOURNAL.DAT").rstrip() + b"\r\n" + trailer(0) + b"\r\n")
    export, records = read(path)
    assert records == [] and export.header.file_name == "JOURNAL.DAT" and export.trailer_count == 0


def test_a_file_not_of_the_export_is_rejected(tmp_path):
    path = write(tmp_path, "PERS.DAT", [header("PERS.DAT")], name="PERSONER.DAT")
    with pytest.raises(Rejected) as caught:
        ExportFile(path).__enter__()
    assert caught.value.where == "PERSONER.DAT"


def test_opening_reads_nothing_until_entered(tmp_path):
    ExportFile(tmp_path / "PERS.DAT")  # no such file yet: nothing is opened
    with pytest.raises(FileNotFoundError):
        ExportFile(tmp_path / "PERS.DAT").__enter__()


# --- hypothesis: nothing raises ----------------------------------------------------------------

export_dates = st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)) | st.just(EXPORT)


@st.composite
def lines_with_one_field_replaced(draw) -> tuple[str, bytes]:
    """A valid record of some file, with arbitrary bytes as one field (fitted to its width, or not)."""
    file = draw(st.sampled_from(list(LAYOUT)))
    name, width = draw(st.sampled_from(LAYOUT[file]))
    content = draw(st.binary(max_size=2 * width + 4))
    if draw(st.booleans()):
        content = content[:width].ljust(width)
    return file, line(file, **{name: content})


def check(parsed: object, key: str | None) -> None:
    assert isinstance(parsed, Rejection) or (isinstance(parsed, tuple) and parsed[0] == key), parsed


@settings(max_examples=500)
@given(lines_with_one_field_replaced(), export_dates, st.booleans())
def test_arbitrary_bytes_in_any_field_never_raise(file_and_raw, export_date, after_trailer):
    file, raw = file_and_raw
    one = Record(file, 2, raw, after_trailer)
    check(parse(one, export_date), key_of(one))


@settings(max_examples=300)
@given(st.sampled_from([*LAYOUT, "OTHER.DAT"]), st.binary(max_size=300), export_dates, st.booleans())
def test_arbitrary_bytes_as_a_line_never_raise(file, raw, export_date, after_trailer):
    one = Record(file, 7, raw, after_trailer)
    check(parse(one, export_date), key_of(one))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(LAYOUT)), st.binary(max_size=2000))
def test_arbitrary_bytes_as_a_file_raise_nothing_but_rejected_for_the_header(file, content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / file
        path.write_bytes(content)
        try:
            export = ExportFile(path).__enter__()
        except Rejected as error:
            assert error.where == "line 1"
            return
        with export:
            for one in export:
                assert one.file == file and b"\n" not in one.raw
                check(parse(one, export.header.export_date), key_of(one))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(list(LAYOUT)),
    st.lists(st.binary(max_size=200) | st.sampled_from([b"", trailer(3)]), max_size=8),
    st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b""]), min_size=8, max_size=8),
)
def test_arbitrary_lines_after_a_valid_header_are_all_handed_out(file, lines, ends):
    content = header(file) + b"\r\n" + b"".join(one + end for one, end in zip(lines, ends, strict=False))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / file
        path.write_bytes(content)
        with ExportFile(path) as export:
            records = list(export)
        # every line is a record or the trailer: nothing vanishes
        count = content.count(b"\n") + (0 if content.endswith(b"\n") else 1)
        assert len(records) + (export.trailer_line is not None) == count - 1
        assert [one.line for one in records] == sorted({*range(2, count + 1)} - {export.trailer_line})
        for one in records:
            check(parse(one, EXPORT), key_of(one))


names = st.text(
    st.characters(codec="cp850", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=30
)


@given(names, names)
def test_names_in_cp850_come_back_as_written(last_name, first_names):
    person = document("PERS.DAT", last_name=last_name, first_names=first_names)
    assert (person.last_name, person.first_names) == (last_name, first_names)


# --- memory --------------------------------------------------------------------------------------

RECORDS = 200_000
PARSED_EVERY = 40  # parsing all of them under tracemalloc takes half a minute; a sample shows parse keeps nothing


def test_a_file_of_200_000_records_is_read_with_flat_memory(tmp_path):
    pool = [ten(born(dt.date(1930, 1, 1) + dt.timedelta(days=day), seed=day)).encode() for day in range(0, 20_000, 20)]
    rest = line("PERS.DAT")[43:] + b"\r\n"
    path = tmp_path / "PERS.DAT"
    with path.open("wb") as file:
        file.write(header("PERS.DAT") + b"\r\n")
        for number in range(RECORDS):
            file.write(b"01" + pool[number % len(pool)] + f"Person {number}".encode().ljust(30) + rest)
        file.write(trailer(RECORDS) + b"\r\n")
    assert path.stat().st_size > 25_000_000

    tracemalloc.start()
    try:
        read, people = 0, 0
        with ExportFile(path) as export:
            for one in export:
                read += 1
                if one.line % PARSED_EVERY == 0:
                    people += isinstance(parse(one, export.header.export_date), tuple)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read == RECORDS and people == RECORDS // PARSED_EVERY and export.trailer_count == RECORDS
    assert peak < 10 * 1024 * 1024, f"peak traced memory {peak / 1e6:.1f} MB"
