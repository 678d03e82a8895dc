"""Reading the export of the retiring Logica Omsorg system (specs/legacy-logica-export.md): four
files of fixed-width CP850 records, each a header, data records and a trailer.

`ExportFile` streams one file a line at a time and hands out every line after the header as a
`Record`, with its number and its bytes as they were, so that each one can end up migrated or
rejected with a trace. `parse` turns one record into its canonical document (schemas.legacy), or
a line of a journal note, or a `Rejection` whose reason a migration team can act on; it never
raises, whatever the bytes. Duplicates, conflicts, references between the files and joining a
note's lines are the migration flow's to judge, with `key_of` and the line numbers.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from core.errors import Rejected
from schemas.bounded import UNPRINTABLE, error_message
from schemas.identity import STOCKHOLM, Personnummer
from schemas.legacy import Area, LegacyCase, LegacyDecision, LegacyJournalNote, LegacyPerson

FILES: dict[str, str] = {"PERS.DAT": "01", "ARENDE.DAT": "02", "BESLUT.DAT": "03", "JOURNAL.DAT": "04"}
"""The export's files in dependency order, and the record type each holds."""

MAX_LINE_BYTES = 1 << 16
"""The most of one line a `Record` keeps (a record is at most 140 characters); the rest of a
longer line is skipped, so that memory stays flat whatever a file holds."""

CENTURY_WINDOW = 20
"""A two-digit year (other than a birth date's) is placed at most this many years after the export date."""


def _columns(first: int, last: int) -> slice:
    """The contract's 1-based, inclusive columns as a slice of the decoded line."""
    return slice(first - 1, last)


LAYOUTS: dict[str, dict[str, slice]] = {
    "PERS.DAT": {
        "personnummer": _columns(3, 13),
        "last_name": _columns(14, 43),
        "first_names": _columns(44, 73),
        "street": _columns(74, 108),
        "postcode": _columns(109, 113),
        "city": _columns(114, 133),
        "protected_identity": _columns(134, 134),
        "died": _columns(135, 140),
    },
    "ARENDE.DAT": {
        "case_number": _columns(3, 12),
        "personnummer": _columns(13, 23),
        "opened": _columns(24, 29),
        "closed": _columns(30, 35),
        "area": _columns(36, 38),
        "officer": _columns(39, 44),
    },
    "BESLUT.DAT": {
        "decision_id": _columns(3, 14),
        "case_number": _columns(15, 24),
        "service_code": _columns(25, 32),
        "decided": _columns(33, 38),
        "valid_from": _columns(39, 44),
        "valid_to": _columns(45, 50),
        "hours_per_month": _columns(51, 55),
        "status": _columns(56, 56),
    },
    "JOURNAL.DAT": {
        "note_id": _columns(3, 14),
        "case_number": _columns(15, 24),
        "date": _columns(25, 30),
        "time": _columns(31, 34),
        "signature": _columns(35, 40),
        "continuation": _columns(41, 43),
        "text": _columns(44, 103),
    },
}
"""The fields of each file's data records (cols 1-2 are the record type)."""

WIDTHS = {name: max(field.stop for field in layout.values()) for name, layout in LAYOUTS.items()}
"""The length of each file's data records: the last column of its last field."""

KEYS: dict[str, tuple[str, ...]] = {
    "PERS.DAT": ("personnummer",),
    "ARENDE.DAT": ("case_number",),
    "BESLUT.DAT": ("decision_id",),
    "JOURNAL.DAT": ("note_id", "continuation"),
}
"""The fields that make a record's key, joined by '/'."""

WORDS = {
    "personnummer": "personnummer",
    "last_name": "last name",
    "first_names": "first names",
    "address": "address",
    "street": "street address",
    "postcode": "postcode",
    "city": "city",
    "protected_identity": "protected identity flag",
    "died": "death date",
    "case_number": "case number",
    "opened": "opened date",
    "closed": "closed date",
    "area": "area",
    "officer": "case officer's signature",
    "decision_id": "decision id",
    "service_code": "service code",
    "decided": "decision date",
    "valid_from": "valid from date",
    "valid_to": "valid to date",
    "hours_per_month": "hours",
    "status": "status",
    "note_id": "note id",
    "date": "note date",
    "time": "time",
    "written": "note date and time",
    "signature": "signature",
    "continuation": "continuation",
    "text": "text",
    "lines": "lines",
}
"""Each field in words, for the reasons a person reads."""

AREAS = frozenset(get_args(Area))
STATUSES = {"B": "granted", "A": "refused", "D": "partly_granted"}

_TRAILER = re.compile(rb"99([0-9]{9}) *")
_NOT_TEXT = re.compile(f"{UNPRINTABLE.pattern}|[\t\n\r]")
"""What no field may hold: control characters, and no line breaks or tabs either in a fixed-width field."""
_ZERO_PERSONNUMMER = re.compile(r"0{6}[-+]?0{4}")
_DIGITS = re.compile("[0-9]+")
_Model = TypeVar("_Model", bound=BaseModel)


@dataclass(frozen=True)
class Header:
    export_date: dt.date
    system: str
    file_name: str


@dataclass(frozen=True)
class Record:
    """One line of a file as it was: its number (1-based, the header is line 1) and its bytes without the line end."""

    file: str
    line: int
    raw: bytes
    after_trailer: bool = False


@dataclass(frozen=True)
class NoteLine:
    """One record of JOURNAL.DAT: a line of a note."""

    note_id: str
    case_number: str
    written: dt.datetime | None
    """Local time, Europe/Stockholm; None when the date is 000000."""
    signature: str
    continuation: int
    text: str


@dataclass(frozen=True)
class Rejection:
    reason: str
    key: str | None = None
    """The record's key as far as it could be read."""


Parsed = LegacyPerson | LegacyCase | LegacyDecision | NoteLine


# --- the files -----------------------------------------------------------------------------------


class ExportFile:
    """One file of the export, read as it comes (never the whole file in memory).

    Use it as a context manager, then iterate it once::

        with ExportFile(folder / "PERS.DAT") as export:
            for record in export: ...
            export.trailer_count
    """

    header: Header

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = self.path.name.upper()
        self.trailer_count: int | None = None
        self.trailer_line: int | None = None
        self._file: BinaryIO | None = None
        self._lines: Iterator[bytes] = iter(())

    def __enter__(self) -> ExportFile:
        if self.name not in FILES:
            raise Rejected(f"not a file of the export (expected one of {', '.join(FILES)})", where=self.path.name)
        self._file = self.path.open("rb")
        try:
            self._lines = _lines(self._file)
            self.header = _header(next(self._lines, None), self.name)
        except BaseException:
            self._file.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()

    def __iter__(self) -> Iterator[Record]:
        """Every line after the header but the trailer; lines after the trailer are marked so."""
        if self._file is None:
            raise RuntimeError("open the file first: with ExportFile(path) as export")
        for number, raw in enumerate(self._lines, start=2):
            if self.trailer_line is None and (trailer := _TRAILER.fullmatch(raw)):
                self.trailer_count, self.trailer_line = int(trailer[1]), number
                continue
            yield Record(self.name, number, raw, after_trailer=self.trailer_line is not None)


def _lines(file: BinaryIO) -> Iterator[bytes]:
    """The file's lines without their ends (CR LF or a bare LF); a line longer than
    MAX_LINE_BYTES keeps its first MAX_LINE_BYTES bytes."""
    while line := file.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            line = line[:MAX_LINE_BYTES]
            while (rest := file.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
        yield line.removesuffix(b"\n").removesuffix(b"\r")


def _header(raw: bytes | None, name: str) -> Header:
    """The header of file `name`, or Rejected naming line 1."""
    if raw is None:
        raise Rejected("empty file, expected a header record", where="line 1")
    text = raw.decode("cp850")
    if text[:2] != "00":
        raise Rejected(f"not a header: record type {text[:2]!r}, expected '00'", where="line 1")
    export_date = None
    if re.fullmatch("[0-9]{8}", text[2:10]):
        try:
            export_date = dt.date(int(text[2:6]), int(text[6:8]), int(text[8:10]))
        except ValueError:
            pass
    if export_date is None:
        raise Rejected(f"not a header: export date {text[2:10]!r} is not a date YYYYMMDD", where="line 1")
    file_name = text[18:30].strip()
    if file_name.upper() != name:
        raise Rejected(f"the header is for {file_name!r}, not {name}", where="line 1")
    if text[30:].strip(" "):
        raise Rejected("not a header: characters after column 30", where="line 1")
    return Header(export_date=export_date, system=text[10:18].strip(), file_name=file_name)


# --- the records -----------------------------------------------------------------------------


def key_of(record: Record) -> str | None:
    """The record's key as written (stripped), for duplicates and conflicts: PERS the personnummer,
    ARENDE the case number, BESLUT the decision id, JOURNAL "note_id/continuation". None for a
    line too short to hold it, of another record type than its file's, or with a blank key."""
    if record.file not in LAYOUTS:
        return None
    line = record.raw.decode("cp850")
    if line[:2] != FILES[record.file]:
        return None
    fields = [LAYOUTS[record.file][name] for name in KEYS[record.file]]
    if len(line) < max(field.stop for field in fields):
        return None
    parts = [line[field].strip() for field in fields]
    return "/".join(parts) if parts[0] else None


def parse(record: Record, export_date: dt.date) -> tuple[str, Parsed] | Rejection:
    """The record's key and document, or why it cannot be migrated. Never raises."""
    key = key_of(record)
    try:
        document = _parse(record, export_date)
        if key is None:  # the required key fields were read, so there is one
            raise _Bad("no key")
    except _Bad as bad:
        return Rejection(str(bad), key)
    return key, document


class _Bad(Exception):
    """What is wrong with a record: the reason of its Rejection."""


def _parse(record: Record, export_date: dt.date) -> Parsed:
    if record.file not in FILES:
        raise _Bad(f"not a file of the export: {record.file!r}")
    if record.after_trailer:
        raise _Bad("after the trailer")
    line = record.raw.decode("cp850")
    if not line:
        raise _Bad("empty line")
    if line[:2] != FILES[record.file]:
        raise _Bad(f"record type {line[:2]!r} does not belong in {record.file}")
    layout, last = LAYOUTS[record.file], WIDTHS[record.file]
    if len(line) < last:
        raise _Bad("record cut short")
    if line[last:].strip(" "):
        raise _Bad(f"trailing characters after column {last}")
    if bad := _NOT_TEXT.search(line):
        raise _Bad(f"not valid text in {WORDS[_field_at(layout, bad.start())]}")
    fields = _Fields(line, layout, export_date)
    return _READERS[record.file](fields)


def _field_at(layout: dict[str, slice], column: int) -> str:
    """The name of the field holding the (0-based) column."""
    return next(name for name, field in layout.items() if field.start <= column < field.stop)


class _Fields:
    """The fields of one decoded, full-length line, read and checked one by one."""

    def __init__(self, line: str, layout: dict[str, slice], export_date: dt.date) -> None:
        self.line, self.layout, self.export_date = line, layout, export_date

    def raw(self, name: str) -> str:
        """The field as written (a line holding characters no text may hold never gets here)."""
        return self.line[self.layout[name]]

    def text(self, name: str) -> str:
        return self.raw(name).strip()

    def required(self, name: str) -> str:
        value = self.text(name)
        if not value:
            raise _Bad(f"missing {WORDS[name]}")
        return value

    def personnummer(self) -> Personnummer:
        value = self.text("personnummer")
        if not value:
            raise _Bad("missing personnummer")
        if _ZERO_PERSONNUMMER.fullmatch(value):
            raise _Bad(f"invalid personnummer: {value}")
        try:
            return Personnummer.parse(value, reference=self.export_date)
        except ValueError as error:
            raise _Bad(f"invalid personnummer: {error}") from None

    def date(self, name: str) -> dt.date | None:
        """A YYMMDD date at most CENTURY_WINDOW years after the export date; None for 000000 or spaces."""
        value = self.raw(name)
        if value == "000000" or value.isspace():
            return None
        if not _DIGITS.fullmatch(value):
            raise _Bad(f"{WORDS[name]} {value!r} is not YYMMDD")
        date = _place(value, self.export_date)
        if date is None:
            raise _Bad(f"impossible {WORDS[name]} {value}")
        return date


@functools.lru_cache(maxsize=1 << 16)
def _place(yymmdd: str, export_date: dt.date) -> dt.date | None:
    """The latest date written `yymmdd` no more than CENTURY_WINDOW years after `export_date`; None
    if there is none. Cached: a century holds some 36 500 days, and the files name them over and over."""
    yy, month, day = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    year = export_date.year + CENTURY_WINDOW
    if year > dt.MAXYEAR:
        latest = dt.date.max
    else:
        try:
            latest = export_date.replace(year=year)
        except ValueError:  # 29 February, in a year that has none
            latest = dt.date(year, 2, 28)
    year = latest.year - (latest.year - yy) % 100
    for candidate in (year, year - 100):
        try:
            date = dt.date(candidate, month, day)
        except ValueError:
            continue
        if date <= latest:
            return date
    return None


def _model(model: type[_Model], **values: Any) -> _Model:
    """`model` of `values`, or the reason naming each field it refuses."""
    try:
        return model(**values)
    except ValidationError as error:
        raise _Bad(
            "; ".join(
                f"{WORDS.get(str(detail['loc'][-1]), str(detail['loc'][-1])) if detail['loc'] else 'record'}: "
                f"{error_message(detail)}"
                for detail in error.errors(include_url=False)
            )
        ) from None


def _person(fields: _Fields) -> LegacyPerson:
    personnummer = fields.personnummer()
    last_name = fields.required("last_name")
    first_names = fields.text("first_names")
    flag = fields.raw("protected_identity")
    if flag not in (" ", "S", "s"):
        raise _Bad(f"unknown protected identity flag {flag!r}")
    protected = flag != " "
    address = None if protected else _address(fields)  # a protected person's address never leaves the hub
    died = fields.date("died")
    return _model(
        LegacyPerson,
        personnummer=personnummer,
        last_name=last_name,
        first_names=first_names,
        address=address,
        protected_identity=protected,
        died=died,
    )


def _address(fields: _Fields) -> dict[str, str] | None:
    street, postcode, city = fields.text("street"), fields.text("postcode"), fields.text("city")
    if not (street or postcode or city):
        return None
    if postcode and not re.fullmatch("[0-9]{5}", postcode):
        raise _Bad("postcode is not five digits")
    return {"street": street, "postcode": postcode, "city": city}


def _case(fields: _Fields) -> LegacyCase:
    case_number = fields.required("case_number")
    personnummer = fields.personnummer()
    opened = fields.date("opened")
    if opened is None:
        raise _Bad("missing opened date")
    closed = fields.date("closed")
    if closed is not None and closed < opened:
        raise _Bad("closed before opened")
    area = fields.text("area").upper()
    if area not in AREAS:
        raise _Bad(f"unknown area {area!r}" if area else "missing area")
    return _model(
        LegacyCase,
        case_number=case_number,
        personnummer=personnummer,
        opened=opened,
        closed=closed,
        area=area,
        officer=fields.text("officer"),
    )


def _decision(fields: _Fields) -> LegacyDecision:
    decision_id = fields.required("decision_id")
    case_number = fields.required("case_number")
    service_code = fields.required("service_code").upper()
    decided, valid_from, valid_to = fields.date("decided"), fields.date("valid_from"), fields.date("valid_to")
    if valid_from is not None and valid_to is not None and valid_to < valid_from:
        raise _Bad("valid to before valid from")
    hours = fields.raw("hours_per_month")
    if not _DIGITS.fullmatch(hours):
        raise _Bad("hours are not a number")
    status = fields.raw("status")
    if status.upper() not in STATUSES:
        raise _Bad(f"unknown status {status!r}")
    return _model(
        LegacyDecision,
        decision_id=decision_id,
        case_number=case_number,
        service_code=service_code,
        decided=decided,
        valid_from=valid_from,
        valid_to=valid_to,
        hours_per_month=Decimal(hours).scaleb(-2),
        status=STATUSES[status.upper()],
    )


def _note_line(fields: _Fields) -> NoteLine:
    note_id = fields.required("note_id")
    case_number = fields.required("case_number")
    date = fields.date("date")
    written = None if date is None else dt.datetime.combine(date, _time(fields.raw("time")), tzinfo=STOCKHOLM)
    signature = fields.text("signature")
    continuation = fields.raw("continuation")
    if not _DIGITS.fullmatch(continuation):
        raise _Bad("continuation is not a number")
    if continuation == "000":
        raise _Bad("continuation is 000, the first line of a note is 001")
    text = fields.raw("text").rstrip()
    # the note's own rules, for this one line
    _model(
        LegacyJournalNote,
        note_id=note_id,
        case_number=case_number,
        written=written,
        signature=signature,
        text=text,
        lines=1,
    )
    return NoteLine(note_id, case_number, written, signature, int(continuation), text)


def _time(value: str) -> dt.time:
    """HHMM, 0000 to 2359."""
    if not value.strip():
        raise _Bad("missing time")
    if not _DIGITS.fullmatch(value):
        raise _Bad(f"time {value!r} is not HHMM")
    try:
        return dt.time(int(value[:2]), int(value[2:]))
    except ValueError:
        raise _Bad(f"impossible time {value}") from None


_READERS: dict[str, Callable[[_Fields], Parsed]] = {
    "PERS.DAT": _person,
    "ARENDE.DAT": _case,
    "BESLUT.DAT": _decision,
    "JOURNAL.DAT": _note_line,
}
