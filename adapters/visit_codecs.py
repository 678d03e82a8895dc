"""Visits as the mobile-reporting vendors send them (specs/mobile-reporting.md): JSON for the
polled page and the pushed body, a `;`-separated CSV file for the SFTP drop.

Pure functions between bytes and `schemas.visits`. A body or file that cannot be read at all
raises `Rejected` naming where; a visit that is wrong becomes a `VisitRejection` whose reason
names the field (and, in a file, the line), never the personnummer, and the rest go on.
Both formats share one way from fields to a Visit: null (an empty cell) means absent, and
pydantic checks the types strictly, so `"version": "3"` is as wrong as `"approved": "yes"`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import re
from typing import Any, BinaryIO, Iterable, Iterator

from pydantic import ValidationError

from core.errors import Rejected
from core.intake import parse_json
from schemas.bounded import UNPRINTABLE, error_message
from schemas.visits import MAX_VISITS, Visit, VisitRejection

MAX_LINE_BYTES = 1 << 20
"""The longest line a visit file may have; keeps memory flat whatever the file holds."""

FIELDS = tuple(Visit.model_fields)
REQUIRED = tuple(name for name, field in Visit.model_fields.items() if field.is_required())
_INTEGERS = {"version"}
_BOOLEANS = {"double_staffing", "declined", "approved"}
_LISTS = {"services"}
_BOOLEAN_TEXT = {"true": True, "1": True, "false": False, "0": False}
_TWELVE_DIGITS = re.compile(r"[0-9]{12}")
_FILE_NAME = re.compile(r"visits_(?P<vendor>[A-Za-z0-9-]+)_(?P<date>[0-9]{8})_(?P<seq>[0-9]+)\.csv")


# --- one visit, from whichever format ----------------------------------------------------------


def _decode(fields: Any, prefix: str = "") -> Visit | VisitRejection:
    """A Visit from JSON-typed `fields`, or the rejection saying which fields are wrong (after `prefix`)."""
    if not isinstance(fields, dict):
        return VisitRejection(visit_id=None, reason=f"{prefix}visit: expected a JSON object")
    visit_id = fields.get("visit_id")
    # the sender's own id is quoted back in a rejection, unless it is no id at all
    visit_id = (
        visit_id if isinstance(visit_id, str) and 0 < len(visit_id) <= 64 and not UNPRINTABLE.search(visit_id) else None
    )
    pnr = fields.get("customer_pnr")
    if isinstance(pnr, str) and not _TWELVE_DIGITS.fullmatch(pnr):
        # a 10-digit form would take its century from today's date: the contract asks for 12 digits
        return VisitRejection(visit_id=visit_id, reason=f"{prefix}customer_pnr: expected 12 digits, YYYYMMDDNNNC")
    present = {name: value for name, value in fields.items() if value is not None}
    try:
        return Visit.model_validate_json(json.dumps(present), strict=True)
    except ValidationError as error:
        return VisitRejection(visit_id=visit_id, reason=prefix + _reason(error))
    except RecursionError:
        return VisitRejection(visit_id=visit_id, reason=f"{prefix}visit: nested too deeply")


def _reason(error: ValidationError) -> str:
    """'field: what is wrong' for each error; pydantic's messages never quote the input."""
    return "; ".join(
        f"{'.'.join(map(str, detail['loc'])) or 'visit'}: {error_message(detail)}"
        for detail in error.errors(include_url=False)
    )


def _from_text(name: str, cell: str) -> Any:
    """A CSV cell as the JSON value it stands for; a cell that is not one stays text for pydantic to refuse."""
    if cell == "":
        return None
    if name in _INTEGERS:
        try:
            return int(cell)
        except ValueError:
            return cell
    if name in _BOOLEANS:
        return _BOOLEAN_TEXT.get(cell.strip().lower(), cell)
    if name in _LISTS:
        return cell.split(",")
    return cell


def _to_text(value: Any) -> str:
    """The inverse of `_from_text` for a JSON-ready value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


# --- JSON: the polled page and the pushed body -------------------------------------------------


def encode_visit(visit: Visit) -> dict[str, Any]:
    """The contract's JSON object: personnummer as 12 digits, organisation number as 10, ISO times."""
    return visit.model_dump(mode="json")


def encode_visit_batch(visits: Iterable[Visit]) -> bytes:
    """A push body, `{"visits": [...]}`."""
    return json.dumps({"visits": [encode_visit(visit) for visit in visits]}, ensure_ascii=False).encode("utf-8")


def _body(data: bytes, max_visits: int | None) -> tuple[dict[str, Any], list[Visit], list[VisitRejection]]:
    body = parse_json(data)
    if not isinstance(body, dict):
        raise Rejected("expected a JSON object with a list of visits", where="body")
    items = body.get("visits")
    if not isinstance(items, list):
        raise Rejected("expected a list of visits", where="visits")
    if max_visits is not None and len(items) > max_visits:
        raise Rejected(f"{len(items)} visits, at most {max_visits} in one request", where="visits")
    visits: list[Visit] = []
    rejections: list[VisitRejection] = []
    for item in items:
        decoded = _decode(item)
        (visits if isinstance(decoded, Visit) else rejections).append(decoded)
    return body, visits, rejections


def decode_visit_batch(data: bytes, *, max_visits: int = MAX_VISITS) -> tuple[list[Visit], list[VisitRejection]]:
    """The visits of a body `{"visits": [...]}` and the rejections of those that are wrong."""
    _, visits, rejections = _body(data, max_visits)
    return visits, rejections


def decode_poll_page(data: bytes) -> tuple[list[Visit], list[VisitRejection], str | None, bool]:
    """(visits, rejections, next_cursor, has_more) of a page the vendor's API answers.

    An empty next_cursor is None; has_more without a next_cursor is refused, as it would
    start over from the beginning."""
    body, visits, rejections = _body(data, None)
    cursor, has_more = body.get("next_cursor"), body.get("has_more", False)
    if cursor is not None and not isinstance(cursor, str):
        raise Rejected("expected a string or null", where="next_cursor")
    if not isinstance(has_more, bool):
        raise Rejected("expected true or false", where="has_more")
    if has_more and not cursor:
        raise Rejected("has_more is true but there is no next_cursor", where="next_cursor")
    return visits, rejections, cursor or None, has_more


# --- CSV: the daily file over SFTP -------------------------------------------------------------


def visit_file_pattern(vendor: str) -> str:
    return f"visits_{vendor}_*.csv"


def parse_visit_file_name(name: str) -> tuple[str, dt.date, int]:
    """(vendor, date, seq) of `visits_{vendor}_{YYYYMMDD}_{seq}.csv`."""
    match = _FILE_NAME.fullmatch(name)
    if not match:
        raise Rejected("expected a name visits_{vendor}_{YYYYMMDD}_{seq}.csv", where=name)
    try:
        date = dt.datetime.strptime(match["date"], "%Y%m%d").date()
    except ValueError:
        raise Rejected(f"no such date {match['date']}", where=name) from None
    return match["vendor"], date, int(match["seq"])


def write_visit_csv(visits: Iterable[Visit], stream: BinaryIO) -> int:
    """Write a visit file to `stream` (left open); returns the number of visits written."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    try:
        writer = csv.writer(text, delimiter=";")
        writer.writerow(FIELDS)
        count = 0
        for count, visit in enumerate(visits, 1):  # noqa: B007 (the count is what the loop leaves)
            encoded = encode_visit(visit)
            writer.writerow([_to_text(encoded[name]) for name in FIELDS])
    finally:
        text.flush()
        text.detach()
    return count


def read_visit_csv(stream: BinaryIO) -> Iterator[tuple[int, Visit | VisitRejection]]:
    """(line, visit or rejection) for each row of a visit file, read one line at a time.

    The line is where the row starts (the header is line 1). A file that is not UTF-8, not CSV
    or lacks a required column raises `Rejected` naming the line, possibly after earlier rows."""
    reader = csv.reader(_lines(stream), delimiter=";")
    first = _next_row(reader)
    if first is None:
        raise Rejected("empty file, expected a header row", where="line 1")
    header = _header(first[1])
    columns = [(index, name) for index, name in enumerate(header) if name in FIELDS]
    while (row := _next_row(reader)) is not None:
        line, cells = row
        if not cells:
            continue  # a blank line
        if len(cells) != len(header):
            reason = f"line {line}: expected {len(header)} fields, got {len(cells)}"
            yield line, VisitRejection(visit_id=None, reason=reason)
        else:
            fields = {name: _from_text(name, cells[index]) for index, name in columns}
            yield line, _decode(fields, prefix=f"line {line}: ")


def _next_row(reader: Any) -> tuple[int, list[str]] | None:
    """The next row and the line it starts on; None at the end."""
    line = reader.line_num + 1
    try:
        return line, next(reader)
    except StopIteration:
        return None
    except csv.Error as error:
        raise Rejected(f"not readable as CSV: {error}", where=f"line {line}") from None


def _header(cells: list[str]) -> list[str]:
    names = [name.strip() for name in cells]
    twice = sorted({name for name in names if name in FIELDS and names.count(name) > 1})
    if twice:
        raise Rejected(f"column(s) named twice: {', '.join(twice)}", where="line 1")
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise Rejected(f"not a visit file, required column(s) missing: {', '.join(missing)}", where="line 1")
    return names


def _lines(stream: BinaryIO) -> Iterator[str]:
    """The stream's lines, decoded one at a time (a leading BOM dropped)."""
    for number in itertools.count(1):
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES:
            raise Rejected(f"line longer than {MAX_LINE_BYTES} bytes", where=f"line {number}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise Rejected(f"not UTF-8 (byte {error.start + 1} of the line)", where=f"line {number}") from None
        yield text.removeprefix("\ufeff") if number == 1 else text
