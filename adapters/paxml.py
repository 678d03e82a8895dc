"""The PAXml 2.0 file of pay lines to payroll (contract: adapters/paxml.xsd, and the section "PAXml
pay lines to payroll" of specs/economy-and-payroll-files.md).

`write_paxml` streams a payroll run's `PayLine`s into the file, one `lonetrans` per line of text,
without ever holding the run: memory stays flat however many lines there are. `check_paxml`
validates a file against the XSD while streaming it, the way the payroll system will read it;
`read_paxml` gives the models back from a file, for tests and for IT operations to look into one.

Files are parsed without DTDs, entities or network, and every failure is `Rejected`, with `where`
naming the line and the element ("line 7: lonetrans/belopp"); reasons never echo a value (a
persnr is personal data), so they can be logged and shown.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from copy import deepcopy
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from lxml import etree
from pydantic import BaseModel, ValidationError

from core.errors import Rejected
from schemas.bounded import error_message
from schemas.money import Period
from schemas.payroll import PayLine, PayrollHeader

XSD_PATH = Path(__file__).parent / "paxml.xsd"
FORMAT = "LÖNIN"
VERSION = "2.0"
COST_CENTRE_DIMENSION = "1"

HEADER = (("date", "datum"), ("organisation_number", "foretagorgnr"), ("organisation_name", "foretagnamn"))
"""PayrollHeader's fields and their elements, after `format` and `version`."""
LINE = (
    ("pay_code", "lonart"),
    ("text", "benamning"),
    ("date_from", "datumfrom"),
    ("date_to", "datumtom"),
    ("quantity", "antal"),
    ("unit_price", "apris"),
    ("amount", "belopp"),
)
"""PayLine's fields held in elements of `lonetrans`, in the contract's order; `resenheter` follows."""
ATTRIBUTES = (("employee_id", "anstid"), ("personnummer", "persnr"))
"""PayLine's fields held in attributes of `lonetrans`."""
TEXTS = frozenset({"benamning", "foretagnamn"})
"""Elements whose whitespace is part of the value; the XSD collapses it around every other one."""

BATCH = 1000
"""Pay lines validated at a time while checking a file."""
CHUNK = 65536
"""Bytes read at a time while checking a file."""

_PARSER_OPTIONS: dict[str, Any] = dict(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True
)
_PARSER = etree.XMLParser(**_PARSER_OPTIONS)
_SCHEMA = etree.XMLSchema(etree.parse(str(XSD_PATH)))
_SCHEMA_LOCK = threading.Lock()  # an XMLSchema keeps the last run's error log on itself
_XML_SPACE = " \t\r\n"

M = TypeVar("M", bound=BaseModel)


def file_name(tenant: str, period: Period, run_id: int) -> str:
    """Deterministic, so that a resend replaces the file instead of adding one: fees_0125_202603_7.pax."""
    return f"fees_{tenant}_{period.year:04d}{period.month:02d}_{run_id}.pax"


def write_paxml(target: BinaryIO, header: PayrollHeader, lines: Iterable[PayLine]) -> int:
    """Write the file to `target` (UTF-8, with an XML declaration); the number of pay lines written.

    `lines` is consumed one at a time (a generator keeps memory flat), and each is written on a
    line of its own, so that a line number names a pay line. The same input gives the same bytes.
    A value the file cannot carry (a character XML refuses, digits of another script than 0-9) is
    Rejected naming its pay line; `target` then holds an incomplete file.
    """
    count = 0
    trans = _PayLineElement()
    with etree.xmlfile(target, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element("paxml"):
            xf.write("\n  ", _header_element(header), "\n  ")
            with xf.element("lonetransaktioner"):
                for count, line in enumerate(lines, start=1):
                    xf.write("\n    ", trans.holding(line, count))
                xf.write("\n  ")
            xf.write("\n")
    target.write(b"\n")
    return count


def check_paxml(source: BinaryIO) -> int:
    """The number of pay lines (`lonetrans`) in a file valid against the XSD; Rejected otherwise.

    Streams: pay lines are validated in batches and dropped, so memory stays flat for any size.
    """
    try:
        return _check(source)
    except etree.XMLSyntaxError as error:
        raise Rejected(f"not well-formed XML: {_first_line(error.msg)}", where=f"line {max(error.lineno, 1)}") from None
    except etree.LxmlError as error:
        raise Rejected(f"not a PAXml file: {_first_line(str(error))}", where="document") from None


def read_paxml(data: bytes) -> tuple[PayrollHeader, list[PayLine]]:
    """The header and pay lines of a file, checked against the XSD first; Rejected if either fails."""
    if not isinstance(data, bytes):
        raise Rejected("a PAXml file is bytes", where="document")
    check_paxml(io.BytesIO(data))
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.LxmlError as error:  # not after check_paxml passed; never a crash all the same
        raise Rejected(f"not well-formed XML: {_first_line(str(error))}", where="document") from None
    header = _read(root.find("header"), PayrollHeader, _header_values)
    return header, [_read(trans, PayLine, _line_values) for trans in root.iterfind("lonetransaktioner/lonetrans")]


# --- writing ----------------------------------------------------------------------------------


def _header_element(header: PayrollHeader) -> etree._Element:
    if not header.organisation_number.isascii():  # the model's \d takes any script's digits
        raise Rejected("an organisation number is digits 0-9", where="header: foretagorgnr")
    element = etree.Element("header")
    _set_text(etree.SubElement(element, "format"), FORMAT, "header: format")
    _set_text(etree.SubElement(element, "version"), VERSION, "header: version")
    for field, tag in HEADER:
        _set_text(etree.SubElement(element, tag), _lexical(getattr(header, field)), f"header: {tag}")
    return element


class _PayLineElement:
    """One `lonetrans` element, filled anew for each pay line: no element is built per line."""

    def __init__(self) -> None:
        self.element = etree.Element("lonetrans", {"anstid": "", "persnr": ""})
        self.leaves = [etree.SubElement(self.element, tag) for _, tag in LINE]
        resenheter = etree.SubElement(self.element, "resenheter")
        self.resenhet = etree.SubElement(resenheter, "resenhet", {"dimid": COST_CENTRE_DIMENSION, "id": ""})

    def holding(self, line: PayLine, number: int) -> etree._Element:
        """The element with `line`, the `number`th pay line of the file, in it."""
        if not line.pay_code.isascii():  # the model's \d takes any script's digits
            raise Rejected("a pay code is digits 0-9", where=f"pay line {number}: lonart")
        self.element.set("anstid", line.employee_id)
        self.element.set("persnr", line.personnummer.digits)
        for (field, tag), leaf in zip(LINE, self.leaves, strict=True):
            _set_text(leaf, _lexical(getattr(line, field)), f"pay line {number}: {tag}")
        self.resenhet.set("id", line.cost_centre)
        return self.element


def _set_text(element: etree._Element, text: str, where: str) -> None:
    try:
        element.text = text
    except ValueError:
        raise Rejected("holds a character XML cannot carry", where=where) from None


def _lexical(value: object) -> str:
    """A value as the XSD writes it: two decimals (never "-0.00"), YYYY-MM-DD, or the text."""
    if isinstance(value, Decimal):
        return f"{value:.2f}" if value else "0.00"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# --- checking ---------------------------------------------------------------------------------


def _check(source: BinaryIO) -> int:
    """Parse without a schema, and validate against the XSD as pay lines complete.

    lxml's validation while parsing (`schema=`) is not used: with entities left unresolved it lets
    through files that are not well-formed, with them resolved a declared entity crashes it (lxml
    6.1, libxml2 2.14), and its errors carry no line. Instead the children of `lonetransaktioner`
    are moved out of the tree once a later one has ended (their tails are then complete) and
    validated, a batch at a time, in a skeleton of the document: the root and the elements before
    `lonetransaktioner`. What is left of the tree is validated at the end.
    """
    root: etree._Element | None = None
    group: etree._Element | None = None
    pending = count = 0
    for element in _ended(source):
        if root is None:
            root = element.getroottree().getroot()
            if element.getroottree().docinfo.doctype:
                raise Rejected("DTD and entities are not allowed", where="DOCTYPE")
        parent = element.getparent()
        if parent is None or parent.tag != "lonetransaktioner" or parent.getparent() is not root:
            continue
        if group is None:
            group = parent
        if parent is not group:
            continue  # a second lonetransaktioner: left in place, and refused below
        pending += 1
        if pending > BATCH:
            count += _validate_batch(root, group, _before(element))
            pending = 1
    if root is None:
        raise Rejected("not a PAXml file: no element", where="line 1")
    if group is not None:
        count += _validate_batch(root, group, list(group))
    _validate(root)
    encoding = root.getroottree().docinfo.encoding or "UTF-8"
    if encoding.upper() not in ("UTF-8", "UTF8"):
        raise Rejected(f"a PAXml file is UTF-8, not {encoding}", where="line 1")
    return count


def _ended(source: BinaryIO) -> Iterator[etree._Element]:
    """The file's elements as each ends, parsed a chunk at a time; a DOCTYPE in the first chunk is
    Rejected before the parser sees it (one further on is, at the first element, in `_check`)."""
    parser = etree.XMLPullParser(events=("end",), **_PARSER_OPTIONS)
    chunk = source.read(CHUNK)
    if b"<!DOCTYPE" in chunk:
        raise Rejected("DTD and entities are not allowed", where="DOCTYPE")
    while chunk:
        parser.feed(chunk)
        yield from (element for _, element in parser.read_events())
        chunk = source.read(CHUNK)
    parser.close()
    yield from (element for _, element in parser.read_events())


def _before(element: etree._Element) -> list[etree._Element]:
    """The siblings before `element`, in document order."""
    siblings = []
    node = element.getprevious()
    while node is not None:
        siblings.append(node)
        node = node.getprevious()
    return siblings[::-1]


def _validate_batch(root: etree._Element, group: etree._Element, batch: list[etree._Element]) -> int:
    """Validate `batch` (children of `group`, moved out of the tree here) in a skeleton; how many pay lines."""
    skeleton = etree.Element(root.tag, dict(root.attrib))
    skeleton.sourceline = root.sourceline
    for sibling in root:
        if sibling is group:
            break
        skeleton.append(deepcopy(sibling))
    copy = etree.SubElement(skeleton, group.tag, dict(group.attrib))
    copy.sourceline = group.sourceline
    copy.text = group.text
    copy.extend(batch)
    _validate(skeleton)
    return sum(1 for element in batch if element.tag == "lonetrans")


def _validate(root: etree._Element) -> None:
    """Rejected, naming the line and element of the first error, if `root` breaks the XSD."""
    with _SCHEMA_LOCK:
        try:
            if _SCHEMA(root):
                return
        except etree.XMLSchemaValidateError:  # an entity reference in the tree
            raise Rejected("DTD and entities are not allowed", where=f"line {root.sourceline}") from None
        first = _SCHEMA.error_log[0]
    reason, attribute = _without_values(first.message)
    steps = [re.sub(r"\[\d+\]$", "", step) for step in (first.path or "").split("/") if step]
    place = "/".join(steps[-1:] + [f"@{attribute}"] if attribute else steps[-2:]) or root.tag
    raise Rejected(reason, where=f"line {first.line}: {place}")


def _without_values(message: str) -> tuple[str, str | None]:
    """An XSD error message without the element and the offending value (it may be personal), and
    the attribute the error is about, if one."""
    message = message.strip()
    named = re.match(r"Element '[^']*'(?:, attribute '([^']*)')?: ", message)
    attribute = named[1] if named else None
    message = message[named.end() :] if named else message
    missing = re.match(r"The attribute '([^']*)' is required", message)
    attribute = attribute or (missing[1] if missing else None)
    message = re.sub(r"^\[facet '[^']*'\] ", "", message)
    message = re.sub(r"^The value '.*' (is|does) ", r"The value \1 ", message, flags=re.S)
    message = re.sub(r"^'.*' (is not a valid value)", r"The value \1", message, flags=re.S)
    return message, attribute


def _first_line(message: str | None) -> str:
    """A parser's message without its position and without the bytes it may quote (on its next line)."""
    lines = (message or "").strip().splitlines()
    return re.sub(r", line \d+, column \d+$", "", lines[0]) if lines else "unreadable"


# --- reading ----------------------------------------------------------------------------------

_NAMES = {
    **dict(HEADER),
    **dict(LINE),
    "employee_id": "@anstid",
    "personnummer": "@persnr",
    "cost_centre": "resenheter/resenhet/@id",
}
"""Where each field is, below its header or lonetrans element."""


def _read(element: etree._Element | None, model: type[M], values: Callable[[etree._Element], dict[str, str]]) -> M:
    """The model in a checked element, or Rejected naming the element of the first broken rule."""
    if element is None:  # the XSD requires it: never after check_paxml passed
        raise Rejected(f"no {model.__name__}", where="document")
    try:
        return model.model_validate(values(element))
    except ValidationError as error:
        first = error.errors()[0]
        name = _NAMES.get(str(first["loc"][0]), "") if first["loc"] else ""
        raise Rejected(
            error_message(first), where=f"line {element.sourceline}: {element.tag}/{name}".rstrip("/")
        ) from None


def _header_values(header: etree._Element) -> dict[str, str]:
    return {field: _text(header, tag) for field, tag in HEADER}


def _line_values(trans: etree._Element) -> dict[str, str]:
    values = {field: _text(trans, tag) for field, tag in LINE}
    values.update({field: trans.get(name, "") for field, name in ATTRIBUTES})
    values["cost_centre"] = trans.find("resenheter/resenhet").get("id", "")
    return values


def _text(parent: etree._Element, tag: str) -> str:
    text = parent.findtext(tag) or ""
    return text if tag in TEXTS else text.strip(_XML_SPACE)
