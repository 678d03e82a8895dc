"""A generated export of the retiring Logica Omsorg system (contract: specs/legacy-logica-export.md),
for the demo, the tests and the benchmark of the migration.

`dirty_export` writes a small export holding every kind of fault the contract lists, each on one
record whose file, line and key it returns; every other record is valid. `clean_export` streams a
large export without faults to disk. The four files are fixed-width CP850 with CR LF line ends.
Every person is generated, never a real one.
"""

from __future__ import annotations

import datetime as dt
import random
import textwrap
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from schemas.identity import check_digit, generate_personnummer

SYSTEM_ID = "LOGOMS41"
ENCODING = "cp850"
EOL = "\r\n"
FILES = ("PERS.DAT", "ARENDE.DAT", "BESLUT.DAT", "JOURNAL.DAT")
WIDTHS = {"PERS.DAT": 140, "ARENDE.DAT": 44, "BESLUT.DAT": 56, "JOURNAL.DAT": 103}
"""The width of a data record in each file."""
HEADER_WIDTH = 30
TRAILER_WIDTH = 11
TEXT_WIDTH = 60
"""The journal text of one record; a longer note goes on in continuation records."""
AREAS = ("ÄO", "LSS", "IFO", "SOP")
STATUSES = ("B", "A", "D")
"""Granted (bifall), refused (avslag), partly granted (delvis)."""

KINDS = (
    "invalid_check_digit",
    "impossible_date",
    "zero_personnummer",
    "zero_date",
    "identical_duplicate",
    "conflict",
    "unknown_person",
    "unknown_case",
    "continuation_gap",
    "continuation_out_of_order",
    "invalid_text",
    "cut_short",
    "trailer_mismatch",
    "lower_case_code",
    "trailing_garbage",
    "closed_before_opened",
    "valid_to_before_valid_from",
    "hours_not_a_number",
    "unknown_status",
)
"""The faults `dirty_export` writes. Each is one record, but `unknown_case` is two: a decision and a note."""


@dataclass(frozen=True)
class Fault:
    """A fault written on purpose: where, and what a reader must say of it."""

    file: str
    line: int
    """1-based line number in the file (the header is line 1)."""
    kind: str
    key: str | None
    """The record's key as written: personnummer field, case number, decision id, or "note_id/continuation"."""


@dataclass(frozen=True)
class Export:
    """What `dirty_export` wrote."""

    folder: Path
    export_date: dt.date
    faults: list[Fault]
    counts: dict[str, int]
    """Data records written per file: all lines but header and trailer, the garbage line included."""
    persons: list[str]
    """The 12-digit personnummer of the valid persons written."""
    protected: list[str]
    """Those with protected identity (a street address is written for them in the file)."""
    centenarian: str
    """The 12-digit personnummer of the person written with '+' (100 years or older on the export date)."""
    coordination: str
    """The 12-digit samordningsnummer of a person written with one."""


# --- fields and records -------------------------------------------------------------------------


def _field(value: str, width: int) -> str:
    """`value` padded with spaces on the right; never cut."""
    if len(value) > width:
        raise ValueError(f"{value!r} is longer than its field ({width})")
    return value.ljust(width)


def _yymmdd(day: dt.date | None) -> str:
    return "" if day is None else f"{day.year % 100:02d}{day.month:02d}{day.day:02d}"


def header(export_date: dt.date, name: str) -> str:
    return "00" + f"{export_date:%Y%m%d}" + SYSTEM_ID + _field(name, 12)


def trailer(count: int) -> str:
    return f"99{count:09d}"


def person_record(
    pnr: str, last: str, first: str, street: str, postcode: str, city: str, protected: bool, died: str
) -> str:
    return (
        "01"
        + _field(pnr, 11)
        + _field(last, 30)
        + _field(first, 30)
        + _field(street, 35)
        + _field(postcode, 5)
        + _field(city, 20)
        + ("S" if protected else " ")
        + _field(died, 6)
    )


def case_record(number: str, pnr: str, opened: str, closed: str, area: str, officer: str) -> str:
    return (
        "02"
        + _field(number, 10)
        + _field(pnr, 11)
        + _field(opened, 6)
        + _field(closed, 6)
        + _field(area, 3)
        + _field(officer, 6)
    )


def decision_record(
    decision_id: str,
    case: str,
    service: str,
    decided: str,
    valid_from: str,
    valid_to: str,
    hours: str,
    status: str,
) -> str:
    return (
        "03"
        + _field(decision_id, 12)
        + _field(case, 10)
        + _field(service, 8)
        + _field(decided, 6)
        + _field(valid_from, 6)
        + _field(valid_to, 6)
        + _field(hours, 5)
        + _field(status, 1)
    )


def note_record(note_id: str, case: str, written: str, time: str, signature: str, line: int, text: str) -> str:
    return (
        "04"
        + _field(note_id, 12)
        + _field(case, 10)
        + _field(written, 6)
        + _field(time, 4)
        + _field(signature, 6)
        + f"{line:03d}"
        + _field(text, TEXT_WIDTH)
    )


# --- the people and their cases -----------------------------------------------------------------

LAST_NAMES = (
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
    "Svensson", "Gustafsson", "Pettersson", "Jönsson", "Åberg", "Öberg", "Ström", "Söderström",
    "Lindqvist", "Nyström", "Björk", "Ekström", "Sjöberg", "Wåhlin", "Mattsson", "Häll",
)  # fmt: skip
FIRST_NAMES = (
    "Anna", "Eva", "Maria", "Karin", "Kerstin", "Åsa", "Märta", "Ingrid", "Birgitta", "Ulla",
    "Göran", "Örjan", "Björn", "Lars", "Per", "Sven", "Åke", "Mikael", "Johan", "Jörgen", "Linnéa",
)  # fmt: skip
STREETS = (
    "Storgatan", "Kyrkvägen", "Skolgatan", "Björkvägen", "Ängsvägen", "Östra Långgatan",
    "Södra vägen", "Järnvägsgatan", "Tallstigen", "Höganäsgatan",
)  # fmt: skip
PLACES = (
    ("41319", "Göteborg"), ("75320", "Uppsala"), ("58222", "Linköping"), ("90326", "Umeå"),
    ("70210", "Örebro"), ("21119", "Malmö"), ("65225", "Karlstad"), ("97231", "Luleå"),
    ("35231", "Växjö"), ("80310", "Gävle"),
)  # fmt: skip
OFFICERS = ("ANLI", "BOSV", "KEJO", "MAÖS", "PEAN", "ULKA", "ÅSBE", "LIHA")
SERVICES = {
    "ÄO": ("HT-OMS", "HT-SERV", "MATDIST", "TRYGGLAR", "KORTTID", "DAGV"),
    "LSS": ("LSS-PA", "LSS-BOS", "LSS-DV", "LSS-KP", "LSS-KORT"),
    "IFO": ("EKB", "KONTAKTP", "FAMHEM", "OPPENV"),
    "SOP": ("BOSTST", "SYSSEL", "BOENDE"),
}
SENTENCES = (
    "Hembesök genomfört.",
    "Brukaren är nöjd med insatsen och önskar fortsatt stöd på förmiddagarna.",
    "Telefonsamtal med dottern angående utökad hemtjänst på kvällstid.",
    "Ansökan om korttidsplats mottagen, utredning påbörjas.",
    "Vårdplaneringsmöte på sjukhuset, brukaren skrivs ut på fredag.",
    "Kontakt med god man om räkningar och fickpengar.",
    "Beslut meddelat muntligt, skriftligt beslut skickat med post.",
    "Uppföljning enligt plan; inga förändringar i behovet.",
    "Brukaren har fallit i hemmet, trygghetslarmet fungerade och hemtjänsten var på plats inom en timme.",
    "Arbetsterapeut bokad för bedömning av hjälpmedel i badrummet.",
    "Samtal med kontaktpersonen, träffarna fungerar bra.",
    "Återbud från brukaren, nytt möte bokat nästa vecka.",
    "Läkarintyg inkommet och diariefört.",
    "Matdistribution startar måndag, specialkost: laktosfri.",
)
FIRST_CASE_DAY = dt.date(2001, 1, 1)
"""No case is opened before this day (so no YYMMDD of a case is in the 1900s)."""


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _birth_date(digits: str) -> dt.date:
    """The birth day of a 12-digit personnummer or samordningsnummer (day of birth + 60)."""
    day = int(digits[6:8])
    return dt.date(int(digits[:4]), int(digits[4:6]), day - 60 if day > 60 else day)


@dataclass
class _Person:
    digits: str
    written: str
    """The personnummer field: YYMMDD-NNNC, or YYMMDD+NNNC at 100 years or more."""
    born: dt.date
    died: dt.date | None
    record: str


@dataclass
class _Case:
    number: str
    written: str
    """The person's personnummer field."""
    opened: dt.date
    closed: dt.date | None
    end: dt.date
    """The day it closed, or the export date: decisions and notes fall within [opened, end]."""
    area: str
    officer: str
    record: str = ""


class _Maker:
    """Valid records, drawn from one random generator; numbers and ids are never reused."""

    def __init__(self, rng: random.Random, export_date: dt.date) -> None:
        self.rng = rng
        self.export_date = export_date
        self.seen: set[str] = set()
        self.cases = 0
        """The last case's sequence number (as the last decision's and note's below)."""
        self.decisions = 0
        self.notes = 0
        self.note_pool = [
            textwrap.wrap(" ".join(rng.sample(SENTENCES, k)), TEXT_WIDTH)
            for k in (1, 1, 1, 1, 1, 1, 2, 2, 3)
            for _ in range(8)
        ]

    def day(self, first: dt.date, last: dt.date) -> dt.date:
        """A day in [first, last]."""
        return first + dt.timedelta(days=int(self.rng.random() * ((last - first).days + 1)))

    def personnummer(self, born_from: dt.date, born_to: dt.date, *, coordination: bool = False) -> tuple[str, str]:
        """A personnummer never given before: its 12 digits and its field as written."""
        while True:
            number = generate_personnummer(self.rng, born_from=born_from, born_to=born_to, coordination=coordination)
            if number.digits not in self.seen:
                self.seen.add(number.digits)
                return number.digits, self.written(number.digits)

    def written(self, digits: str) -> str:
        """The 10-digit form with '-', or '+' for someone 100 or older on the export date."""
        centenarian = _years_before(self.export_date, 100) >= _birth_date(digits)
        return digits[2:8] + ("+" if centenarian else "-") + digits[8:]

    def person(
        self,
        born_from: dt.date,
        born_to: dt.date,
        *,
        coordination: bool = False,
        protected: bool = False,
        dead: bool = False,
        last_name: str | None = None,
    ) -> _Person:
        rng = self.rng
        digits, written = self.personnummer(born_from, born_to, coordination=coordination)
        born = _birth_date(digits)
        died = None
        if dead:
            died = self.day(max(born + dt.timedelta(days=365), _years_before(self.export_date, 3)), self.export_date)
        first = rng.choice(FIRST_NAMES) if rng.random() < 0.6 else " ".join(rng.sample(FIRST_NAMES, 2))
        postcode, city = rng.choice(PLACES)
        street = f"{rng.choice(STREETS)} {rng.randint(1, 120)}" + (
            f" lgh {rng.randint(1001, 1504)}" if rng.random() < 0.3 else ""
        )
        record = person_record(
            written,
            last_name or rng.choice(LAST_NAMES),
            first,
            street,
            postcode,
            city,
            protected,
            _yymmdd(died),
        )
        return _Person(digits, written, born, died, record)

    def case(self, person: _Person) -> _Case:
        """A case of `person`, opened and perhaps closed in their life (after 2000)."""
        rng = self.rng
        last = person.died or self.export_date
        opened = self.day(max(FIRST_CASE_DAY, person.born + dt.timedelta(days=1)), last - dt.timedelta(days=1))
        closed = None
        if person.died or rng.random() < 0.4:
            closed = self.day(opened + dt.timedelta(days=1), last)
        age = (self.export_date - person.born).days // 365
        area = "ÄO" if age >= 65 and rng.random() < 0.85 else rng.choice(AREAS[1:])
        self.cases += 1
        case = _Case(
            f"{opened.year % 100:02d}-{self.cases:07d}",
            person.written,
            opened,
            closed,
            closed or self.export_date,
            area,
            rng.choice(OFFICERS),
        )
        case.record = case_record(case.number, case.written, _yymmdd(opened), _yymmdd(closed), area, case.officer)
        return case

    def decision_id(self) -> str:
        self.decisions += 1
        return f"D{self.decisions:011d}"

    def note_id(self) -> str:
        self.notes += 1
        return f"J{self.notes:011d}"

    def decision(self, case: _Case, *, status: str | None = None, case_number: str | None = None) -> str:
        """A decision within the case's time; granted unless `status` or chance says otherwise."""
        rng = self.rng
        last = case.end - dt.timedelta(days=1)
        decided = self.day(case.opened, last)
        valid_from = self.day(decided, last)
        open_ended = case.closed is None and rng.random() < 0.5
        valid_to = None if open_ended else self.day(valid_from + dt.timedelta(days=1), case.end)
        if status is None:
            draw = rng.random()
            status = "B" if draw < 0.75 else "D" if draw < 0.9 else "A"
        hours = 0 if status == "A" else rng.randrange(1, 1600) * 25
        return decision_record(
            self.decision_id(),
            case_number or case.number,
            rng.choice(SERVICES[case.area]),
            _yymmdd(decided),
            _yymmdd(valid_from),
            _yymmdd(valid_to),
            f"{hours:05d}",
            status,
        )

    def note(self, case: _Case, *, case_number: str | None = None, lines: int | None = None) -> tuple[str, list[str]]:
        """A note's id and its records in continuation order 001, 002 ...; `lines` of them if given."""
        rng = self.rng
        if lines is None:
            texts = rng.choice(self.note_pool)
        else:
            texts = textwrap.wrap(" ".join(rng.sample(SENTENCES, 6)), TEXT_WIDTH)[:lines]  # 4 lines or more
        note_id = self.note_id()
        written = _yymmdd(self.day(case.opened, case.end))
        time = f"{rng.randint(7, 20):02d}{rng.randrange(60):02d}"
        signature = rng.choice(OFFICERS)
        number = case_number or case.number
        return note_id, [
            note_record(note_id, number, written, time, signature, n, text) for n, text in enumerate(texts, 1)
        ]


# --- the dirty export ---------------------------------------------------------------------------

_SCHEDULED = (
    ("PERS.DAT", "invalid_check_digit"),
    ("PERS.DAT", "impossible_date"),
    ("PERS.DAT", "zero_personnummer"),
    ("PERS.DAT", "identical_duplicate"),
    ("PERS.DAT", "invalid_text"),
    ("ARENDE.DAT", "zero_date"),
    ("ARENDE.DAT", "unknown_person"),
    ("ARENDE.DAT", "closed_before_opened"),
    ("ARENDE.DAT", "lower_case_code"),
    ("BESLUT.DAT", "conflict"),
    ("BESLUT.DAT", "unknown_case"),
    ("BESLUT.DAT", "valid_to_before_valid_from"),
    ("BESLUT.DAT", "hours_not_a_number"),
    ("BESLUT.DAT", "unknown_status"),
    ("JOURNAL.DAT", "unknown_case"),
    ("JOURNAL.DAT", "continuation_gap"),
    ("JOURNAL.DAT", "continuation_out_of_order"),
)
"""The faults written among the persons; `cut_short`, `trailer_mismatch` and `trailing_garbage`
belong to the files' ends."""

_Entry = tuple[str, str | None, str | None]
"""A data record as written, and the fault it holds (kind, key), if any."""


class _Dirty:
    """The data records of the four files, in order, and the fault records among them."""

    def __init__(self, make: _Maker, export_date: dt.date) -> None:
        self.make = make
        self.rng = make.rng
        self.export_date = export_date
        self.lines: dict[str, list[_Entry]] = {name: [] for name in FILES}
        self.valid: list[_Person] = []
        self.granted: list[str] = []

    def add(self, name: str, record: str, kind: str | None = None, key: str | None = None) -> None:
        self.lines[name].append((record, kind, key))

    def born(self) -> tuple[dt.date, dt.date]:
        """The birth days of an ordinary person: 2 to 95 years old on the export date."""
        return _years_before(self.export_date, 95), _years_before(self.export_date, 2)

    def case_with_records(self, case: _Case) -> None:
        """A valid case, its decisions (the first granted) and notes."""
        rng = self.rng
        self.add("ARENDE.DAT", case.record)
        for n in range(rng.randint(1, 3)):
            decision = self.make.decision(case, status="B" if n == 0 else None)
            self.add("BESLUT.DAT", decision)
            if decision[55] == "B":
                self.granted.append(decision)
        for _ in range(rng.randint(0, 3)):
            for line in self.make.note(case)[1]:
                self.add("JOURNAL.DAT", line)

    def fault(self, name: str, kind: str, person: _Person, case: _Case) -> None:
        """Write one fault; `person` and `case` are valid ones already written."""
        make, rng = self.make, self.rng
        if kind == "invalid_check_digit":
            bad = make.person(*self.born())
            written = bad.written[:-1] + str((int(bad.written[-1]) + 1 + rng.randrange(9)) % 10)
            self.add(name, "01" + written + bad.record[13:], kind, written)
        elif kind == "impossible_date":
            bad = make.person(*self.born())
            body = bad.written[:2] + "13" + bad.written[4:6] + bad.written[7:10]
            written = body[:6] + "-" + body[6:] + check_digit(body)
            self.add(name, "01" + written + bad.record[13:], kind, written)
        elif kind == "zero_personnummer":
            bad = make.person(*self.born())
            self.add(name, "01" + "000000-0000" + bad.record[13:], kind, "000000-0000")
        elif kind == "identical_duplicate":
            first = rng.choice(self.valid[:-1] or self.valid)
            self.add(name, first.record, kind, first.written)
        elif kind == "invalid_text":
            bad = make.person(*self.born(), last_name="Lind\x00\x07qvist")
            self.add(name, bad.record, kind, bad.written)
        elif kind == "zero_date":
            bad = make.case(person)
            record = case_record(bad.number, bad.written, "000000", "", bad.area, bad.officer)
            self.add(name, record, kind, bad.number)
        elif kind == "unknown_person":
            absent = make.person(*self.born())  # generated, never written
            bad = make.case(absent)
            self.add(name, bad.record, kind, bad.number)
        elif kind == "closed_before_opened":
            bad = make.case(person)
            closed = bad.opened - dt.timedelta(days=rng.randint(1, 30))
            record = case_record(bad.number, bad.written, _yymmdd(bad.opened), _yymmdd(closed), bad.area, bad.officer)
            self.add(name, record, kind, bad.number)
        elif kind == "lower_case_code":
            bad = make.case(person)
            self.add(name, bad.record[:35] + "lss" + bad.record[38:], kind, bad.number)
        elif kind == "conflict":
            first = rng.choice(self.granted)
            hours = f"{(int(first[50:55]) + 400) % 100000:05d}"
            self.add(name, first[:50] + hours + first[55:], kind, first[2:14])
        elif kind == "unknown_case" and name == "BESLUT.DAT":
            make.cases += 1  # a case number never written
            record = make.decision(case, case_number=f"{case.number[:2]}-{make.cases:07d}")
            self.add(name, record, kind, record[2:14])
        elif kind == "unknown_case":
            make.cases += 1
            note_id, lines = make.note(case, case_number=f"{case.number[:2]}-{make.cases:07d}", lines=1)
            self.add(name, lines[0], kind, f"{note_id}/001")
        elif kind == "valid_to_before_valid_from":
            valid_from = make.day(case.opened + dt.timedelta(days=1), case.end)
            valid_to = make.day(case.opened, valid_from - dt.timedelta(days=1))
            record = make.decision(case)
            record = record[:32] + _yymmdd(valid_to) + _yymmdd(valid_from) + _yymmdd(valid_to) + record[50:]
            self.add(name, record, kind, record[2:14])
        elif kind == "hours_not_a_number":
            record = make.decision(case, status="B")
            self.add(name, record[:50] + "1O250" + record[55:], kind, record[2:14])
        elif kind == "unknown_status":
            record = make.decision(case)
            self.add(name, record[:55] + "X", kind, record[2:14])
        elif kind == "continuation_gap":
            note_id, lines = make.note(case, lines=3)
            self.add(name, lines[0])
            self.add(name, lines[2], kind, f"{note_id}/003")
        elif kind == "continuation_out_of_order":
            note_id, lines = make.note(case, lines=2)
            self.add(name, lines[1], kind, f"{note_id}/002")
            self.add(name, lines[0])
        else:
            raise ValueError(f"no such fault: {name} {kind}")


def dirty_export(
    folder: Path, *, seed: int = 1, persons: int = 20, export_date: dt.date = dt.date(2026, 11, 30)
) -> Export:
    """A small export with a realistic mix (each person 1-2 cases, each case 1-3 decisions and 0-3
    notes, some notes of several lines) and every kind of fault exactly once, recorded in `faults`.

    `persons` valid persons are written; the fault records come on top of them. A fault record has
    no records that depend on it, so it is the only record a reader must reject for that fault.
    """
    if persons < 6:
        raise ValueError("a dirty export needs at least 6 persons")
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    make = _Maker(rng, export_date)
    dirty = _Dirty(make, export_date)
    few = max(2, persons // 10)
    special = rng.sample(range(persons), 2 + 2 * few)
    centenarian, coordination = special[:2]
    protected, dead = set(special[2 : 2 + few]), set(special[2 + few :])
    scheduled: dict[int, list[tuple[str, str]]] = {}
    order = list(_SCHEDULED)
    rng.shuffle(order)
    for n, item in enumerate(order):  # never on the first person: a duplicate needs an earlier record
        scheduled.setdefault(1 + n * (persons - 1) // len(order), []).append(item)

    for index in range(persons):
        if index == centenarian:
            born = (_years_before(export_date, 104), _years_before(export_date, 101))
        else:
            born = dirty.born()
        person = make.person(
            *born, coordination=index == coordination, protected=index in protected, dead=index in dead
        )
        dirty.add("PERS.DAT", person.record)
        dirty.valid.append(person)
        cases = [make.case(person) for _ in range(rng.randint(1, 2))]
        for case in cases:
            dirty.case_with_records(case)
        for name, kind in scheduled.get(index, []):
            dirty.fault(name, kind, person, cases[0])

    note_id, lines = make.note(cases[0], lines=1)
    dirty.add("JOURNAL.DAT", lines[0][: WIDTHS["JOURNAL.DAT"] - 25], "cut_short", f"{note_id}/001")
    garbage = bytes([0x1A]) + bytes(rng.choice([b for b in range(256) if b not in (10, 13)]) for _ in range(22))

    faults, counts = _write_dirty(folder, export_date, dirty.lines, garbage)
    return Export(
        folder=folder,
        export_date=export_date,
        faults=faults,
        counts=counts,
        persons=[p.digits for p in dirty.valid],
        protected=[p.digits for i, p in enumerate(dirty.valid) if i in protected],
        centenarian=dirty.valid[centenarian].digits,
        coordination=dirty.valid[coordination].digits,
    )


def _write_dirty(
    folder: Path, export_date: dt.date, lines: dict[str, list[_Entry]], garbage: bytes
) -> tuple[list[Fault], dict[str, int]]:
    """The four files: ARENDE.DAT's trailer one too many, junk after BESLUT.DAT's trailer,
    JOURNAL.DAT's last record cut short with no trailer. The faults with their lines, and the counts."""
    faults, counts = [], {}
    for name in FILES:
        entries = lines[name]
        out = bytearray((header(export_date, name) + EOL).encode(ENCODING))
        for number, (record, kind, key) in enumerate(entries, start=2):
            last_cut = kind == "cut_short"
            out += (record + ("" if last_cut else EOL)).encode(ENCODING)
            if kind:
                faults.append(Fault(name, number, kind, key))
        counts[name] = len(entries)
        trailer_line = len(entries) + 2
        if name == "ARENDE.DAT":
            out += (trailer(len(entries) + 1) + EOL).encode(ENCODING)
            faults.append(Fault(name, trailer_line, "trailer_mismatch", None))
        elif name == "BESLUT.DAT":
            out += (trailer(len(entries)) + EOL).encode(ENCODING) + garbage + EOL.encode(ENCODING)
            faults.append(Fault(name, trailer_line + 1, "trailing_garbage", None))
            counts[name] += 1
        elif name == "PERS.DAT":
            out += (trailer(len(entries)) + EOL).encode(ENCODING)
        (folder / name).write_bytes(bytes(out))
    return faults, counts


# --- the clean export ---------------------------------------------------------------------------


def clean_export(
    folder: Path, records: int, *, seed: int = 1, export_date: dt.date = dt.date(2026, 11, 30)
) -> dict[str, int]:
    """About `records` data records in all in a realistic mix (for example 10% persons, 15% cases,
    35% decisions, 40% note lines), written as it goes (never all in memory; fast: a million
    records in well under a minute); returns the count per file.

    No faults: every record is valid and every reference resolves. Some persons are 100 or older
    ('+'), some have a samordningsnummer, protected identity or a date of death. Only the
    personnummer already given are kept, to never give one twice.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    make = _Maker(rng, export_date)
    born_from, born_to = _years_before(export_date, 103), _years_before(export_date, 1)
    adult = _years_before(export_date, 20)
    counts = dict.fromkeys(FILES, 0)
    with ExitStack() as stack:
        out = {
            name: stack.enter_context(open(folder / name, "w", encoding=ENCODING, newline="", buffering=1 << 20))
            for name in FILES
        }
        for name, file in out.items():
            file.write(header(export_date, name) + EOL)
        persons, cases, decisions, notes = (out[name] for name in FILES)
        total = 0
        while total < records:
            draw = rng.random()
            dead = draw >= 0.97
            person = make.person(
                born_from,
                adult if dead else born_to,
                coordination=draw < 0.02,
                protected=0.02 <= draw < 0.03,
                dead=dead,
            )
            persons.write(person.record + EOL)
            written = {"PERS.DAT": 1, "ARENDE.DAT": 0, "BESLUT.DAT": 0, "JOURNAL.DAT": 0}
            for _ in range(rng.randint(1, 2)):
                case = make.case(person)
                cases.write(case.record + EOL)
                written["ARENDE.DAT"] += 1
                for _ in range(rng.choice((1, 2, 2, 3, 3, 3))):
                    decisions.write(make.decision(case) + EOL)
                    written["BESLUT.DAT"] += 1
                for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
                    lines = make.note(case)[1]
                    notes.write(EOL.join(lines) + EOL)
                    written["JOURNAL.DAT"] += len(lines)
            for name, count in written.items():
                counts[name] += count
                total += count
        for name, file in out.items():
            file.write(trailer(counts[name]) + EOL)
    return counts
