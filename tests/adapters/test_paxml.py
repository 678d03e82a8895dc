"""The PAXml file of pay lines: round trips, the contract's layout, the XSD, every bad file a
Rejected saying where, and flat memory for a large run."""

from __future__ import annotations

import datetime as dt
import io
import random
import re
import tracemalloc
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters import paxml
from core.errors import Rejected
from schemas.identity import generate_personnummer
from schemas.money import Period
from schemas.payroll import PayLine, PayrollHeader
from tests.xml_attacks import billion_laughs

xml_char = st.characters(exclude_categories=("Cs",), exclude_characters="\ufffe\uffff").filter(
    lambda char: not "\x7f" <= char <= "\x9f" and (char >= " " or char in "\t\n\r")
)  # what XML can carry and Text takes: no control characters but tab and line breaks

seeds = st.integers(0, 2**32)
personnummer = st.builds(
    lambda seed, samordning: generate_personnummer(random.Random(seed), coordination=samordning), seeds, st.booleans()
)
code = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,19}", fullmatch=True)
texts = st.text(xml_char, min_size=1, max_size=100)

headers = st.builds(
    PayrollHeader,
    date=st.dates(),
    organisation_number=st.from_regex(r"[0-9]{10}", fullmatch=True),
    organisation_name=texts,
)
pay_lines = st.builds(
    PayLine,
    employee_id=code,
    personnummer=personnummer,
    pay_code=st.from_regex(r"[0-9]{1,6}", fullmatch=True),
    text=texts,
    date_from=st.dates(),
    date_to=st.dates(),
    quantity=st.decimals(min_value=-100_000, max_value=100_000, places=2),
    unit_price=st.decimals(min_value=0, max_value=1_000_000, places=2),
    amount=st.decimals(min_value=-100_000_000, max_value=100_000_000, places=2),
    cost_centre=code,
)

HEADER_ORDER = ["format", "version", "datum", "foretagorgnr", "foretagnamn"]
LINE_ORDER = ["lonart", "benamning", "datumfrom", "datumtom", "antal", "apris", "belopp", "resenheter"]
TWO_DECIMALS = re.compile(r"-?[0-9]+\.[0-9]{2}")


def a_header(**changes) -> PayrollHeader:
    header = PayrollHeader(
        date=dt.date(2026, 3, 31), organisation_number="2120000142", organisation_name="Ekerö kommun"
    )
    return header.model_copy(update=changes)


def a_line(**changes) -> PayLine:
    line = PayLine(
        employee_id="E-1001",
        personnummer=generate_personnummer(random.Random(7)),
        pay_code="3101",
        text="Arvode familjehem A-1001",
        date_from=dt.date(2026, 2, 1),
        date_to=dt.date(2026, 2, 28),
        quantity="19",
        unit_price="9800.00",
        amount="6650.00",
        cost_centre="KST-410",
    )
    return line.model_copy(update=changes)


def written(lines: list[PayLine], header: PayrollHeader | None = None) -> bytes:
    target = io.BytesIO()
    paxml.write_paxml(target, header or a_header(), iter(lines))
    return target.getvalue()


def rejected_by_check(data: bytes) -> Rejected:
    with pytest.raises(Rejected) as caught:
        paxml.check_paxml(io.BytesIO(data))
    return caught.value


def checked_or_rejected(data: bytes) -> None:
    """Either function answers with its result or a Rejected saying where; nothing else escapes."""
    for read in (lambda: paxml.check_paxml(io.BytesIO(data)), lambda: paxml.read_paxml(data)):
        try:
            read()
        except Rejected as error:
            assert error.where


# --- round trips ------------------------------------------------------------------------------


@given(headers, st.lists(pay_lines, max_size=8))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_file_round_trips_and_is_valid_against_the_xsd(header, lines):
    data = written(lines, header)
    assert paxml.check_paxml(io.BytesIO(data)) == len(lines)
    assert paxml.read_paxml(data) == (header, lines)


@given(headers, st.lists(pay_lines, max_size=4))
@settings(max_examples=20, deadline=None)
def test_the_same_input_gives_the_same_bytes(header, lines):
    assert written(lines, header) == written(lines, header)


def test_write_returns_the_number_of_lines_and_takes_a_generator():
    target = io.BytesIO()
    count = paxml.write_paxml(target, a_header(), (a_line(employee_id=f"E-{n}") for n in range(3)))
    assert count == 3
    assert paxml.check_paxml(io.BytesIO(target.getvalue())) == 3


def test_a_file_without_pay_lines_is_valid():
    data = written([])
    assert paxml.check_paxml(io.BytesIO(data)) == 0
    assert paxml.read_paxml(data) == (a_header(), [])


def test_lines_beyond_a_batch_are_counted_and_a_late_error_is_named_by_its_line():
    count = 2 * paxml.BATCH + 17
    data = written([a_line(employee_id=f"E-{n}") for n in range(count)])
    assert paxml.check_paxml(io.BytesIO(data)) == count
    lines = data.split(b"\n")
    late = 4 + paxml.BATCH + 500  # pay line n is on line 4 + n
    lines[late - 1] = lines[late - 1].replace(b"<belopp>6650.00</belopp>", b"<belopp>6650.001</belopp>")
    error = rejected_by_check(b"\n".join(lines))
    assert error.where == f"line {late}: lonetrans/belopp"


def test_the_file_name():
    assert paxml.file_name("0125", Period(2026, 3), 7) == "fees_0125_202603_7.pax"


# --- the contract's layout --------------------------------------------------------------------


def test_the_elements_are_in_the_contracts_order_without_a_namespace():
    line = a_line(quantity=Decimal("-3"), amount=Decimal("-1050.5"))
    data = written([line])
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<paxml>")
    root = etree.fromstring(data)
    assert root.tag == "paxml" and not root.nsmap
    assert [child.tag for child in root] == ["header", "lonetransaktioner"]
    assert [child.tag for child in root.find("header")] == HEADER_ORDER
    assert root.findtext("header/format") == "LÖNIN" and root.findtext("header/version") == "2.0"
    assert root.findtext("header/datum") == "2026-03-31" and root.findtext("header/foretagorgnr") == "2120000142"
    (trans,) = root.find("lonetransaktioner")
    assert trans.tag == "lonetrans" and dict(trans.attrib) == {"anstid": "E-1001", "persnr": line.personnummer.digits}
    assert [child.tag for child in trans] == LINE_ORDER
    assert [child.text for child in trans][:7] == [
        "3101",
        "Arvode familjehem A-1001",
        "2026-02-01",
        "2026-02-28",
        "-3.00",
        "9800.00",
        "-1050.50",
    ]
    (resenhet,) = trans.find("resenheter")
    assert resenhet.tag == "resenhet" and dict(resenhet.attrib) == {"dimid": "1", "id": "KST-410"}
    assert b'<resenhet dimid="1" id="KST-410"/>' in data


@given(st.lists(pay_lines, min_size=1, max_size=5))
@settings(max_examples=30, deadline=None)
def test_numbers_have_two_decimals_and_persnr_twelve_digits(lines):
    root = etree.fromstring(written(lines))
    for trans, line in zip(root.iterfind("lonetransaktioner/lonetrans"), lines, strict=True):
        assert re.fullmatch(r"[0-9]{12}", trans.get("persnr")) and trans.get("persnr") == line.personnummer.digits
        for tag in ("antal", "apris", "belopp"):
            assert TWO_DECIMALS.fullmatch(trans.findtext(tag)), tag
        assert not trans.findtext("apris").startswith("-")


def test_each_pay_line_is_a_line_of_its_own():
    data = written([a_line(), a_line(employee_id="E-2")])
    lines = data.decode().splitlines()
    assert len(lines) == 8 and data.endswith(b"</paxml>\n")
    assert lines[4].strip().startswith('<lonetrans anstid="E-1001"') and lines[4].endswith("</lonetrans>")
    assert lines[5].strip().startswith('<lonetrans anstid="E-2"')


def test_a_zero_is_never_written_negative():
    data = written([a_line(quantity=Decimal("-0"), amount=Decimal("-0.00"))])
    assert b"<antal>0.00</antal>" in data and b"<belopp>0.00</belopp>" in data


def test_a_text_xml_cannot_carry_is_refused_naming_the_pay_line():
    with pytest.raises(Rejected) as caught:
        written([a_line(), a_line(text="Arvode \ufffe")])
    assert caught.value.where == "pay line 2: benamning"


def test_digits_of_another_script_are_refused_when_writing():
    with pytest.raises(Rejected) as caught:
        written([a_line(pay_code="٣١٠١")])  # the model's \d takes them; payroll and the XSD do not
    assert caught.value.where == "pay line 1: lonart"


# --- bad files are Rejected, naming the line and the element ---------------------------------

GOOD = written([a_line(), a_line(employee_id="E-1002")])  # pay line 1 on line 5, pay line 2 on line 6


@pytest.mark.parametrize(
    ("damage", "where", "said"),
    [
        (
            lambda data: data.replace(
                b"<lonart>3101</lonart><benamning>Arvode familjehem A-1001</benamning>",
                b"<benamning>Arvode familjehem A-1001</benamning><lonart>3101</lonart>",
            ),
            "line 5: lonetrans/benamning",
            "Expected is ( lonart )",
        ),
        (
            lambda data: data.replace(b"<belopp>6650.00</belopp>", b"<belopp>6650.001</belopp>"),
            "line 5: lonetrans/belopp",
            "pattern",
        ),
        (
            lambda data: data.replace(
                b'<resenheter><resenhet dimid="1" id="KST-410"/></resenheter></lonetrans>\n', b"</lonetrans>\n", 1
            ),
            "line 5: lonetransaktioner/lonetrans",
            "resenheter",
        ),
        (
            lambda data: data.replace(b'<lonetrans anstid="E-1002"', b'<lonetrans anstid="E 1002"'),
            "line 6: lonetrans/@anstid",
            "pattern",
        ),
        (
            lambda data: data.replace(b'dimid="1"', b'dimid="2"'),
            "line 5: resenhet/@dimid",
            "fixed",
        ),
        (
            lambda data: data.replace(b'id="KST-410"/>', b"/>"),
            "line 5: resenhet/@id",
            "required",
        ),
        (
            lambda data: data.replace(b"<apris>9800.00</apris>", b"<apris>-9800.00</apris>"),
            "line 5: lonetrans/apris",
            "minimum",
        ),
        (
            lambda data: data.replace(b"<antal>19.00</antal>", b"<antal>19</antal>"),
            "line 5: lonetrans/antal",
            "pattern",
        ),
        (
            lambda data: data.replace(b"<datumfrom>2026-02-01</datumfrom>", b"<datumfrom>2026-02-30</datumfrom>"),
            "line 5: lonetrans/datumfrom",
            "Date",
        ),
        (
            lambda data: data.replace(b"<lonart>3101</lonart>", b"<lonart>31A</lonart>"),
            "line 5: lonetrans/lonart",
            "pattern",
        ),
        (
            lambda data: data.replace("<format>LÖNIN</format>".encode(), b"<format>LONIN</format>"),
            "line 3: header/format",
            "LÖNIN",
        ),
        (
            lambda data: data.replace(b"<version>2.0</version>", b"<version>1.0</version>"),
            "line 3: header/version",
            "2.0",
        ),
        (
            lambda data: data.replace(
                b"<foretagorgnr>2120000142</foretagorgnr>", b"<foretagorgnr>212000014</foretagorgnr>"
            ),
            "line 3: header/foretagorgnr",
            "pattern",
        ),
        (
            lambda data: data.replace(b"</lonetransaktioner>", b"</lonetransaktioner><extra/>"),
            "line 7: paxml/extra",
            "not expected",
        ),
        (
            lambda data: data.replace(b"</lonetrans>\n    <lonetrans", b"</lonetrans>\n  text  <lonetrans"),
            "line 4: paxml/lonetransaktioner",
            "whitespace",
        ),
    ],
    ids=[
        "wrong-order",
        "three-decimals",
        "no-resenheter",
        "anstid",
        "dimid",
        "no-resenhet-id",
        "negative-apris",
        "antal-without-decimals",
        "impossible-date",
        "lonart",
        "format",
        "version",
        "foretagorgnr",
        "extra-element",
        "text-between-lines",
    ],
)
def test_a_broken_file_is_rejected_naming_the_line_and_element(damage, where, said):
    data = damage(GOOD)
    assert data != GOOD
    error = rejected_by_check(data)
    assert error.where == where
    assert said in error.reason
    with pytest.raises(Rejected):
        paxml.read_paxml(data)


def test_a_rejection_never_echoes_the_persnr():
    digits = a_line().personnummer.digits
    error = rejected_by_check(GOOD.replace(digits.encode(), digits[2:].encode()))
    assert error.where == "line 5: lonetrans/@persnr"
    assert digits[2:] not in str(error)


def test_a_persnr_the_xsd_takes_but_the_model_refuses_is_rejected_when_reading():
    digits = a_line().personnummer.digits
    wrong = digits[:11] + str((int(digits[11]) + 1) % 10)
    data = GOOD.replace(digits.encode(), wrong.encode(), 1)
    assert paxml.check_paxml(io.BytesIO(data)) == 2
    with pytest.raises(Rejected) as caught:
        paxml.read_paxml(data)
    assert caught.value.reason == "wrong check digit"
    assert caught.value.where == "line 5: lonetrans/@persnr"
    assert wrong not in str(caught.value)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"", "not well-formed"),
        (GOOD[: len(GOOD) // 2], "not well-formed"),
        (GOOD.replace(b"Arvode", b"Arvode &name;", 1), "not well-formed"),
        (GOOD.replace(b"Arvode", b"Arvode \x01", 1), "not well-formed"),
        (GOOD.replace(b"<paxml>", b"<lonetransaktioner>").replace(b"</paxml>", b"</lonetransaktioner>"), "declaration"),
        (GOOD.decode().replace("UTF-8", "ISO-8859-1").encode("latin-1"), "UTF-8"),
    ],
    ids=["empty", "truncated", "undeclared-entity", "control-character", "another-root", "latin-1"],
)
def test_a_file_that_is_not_paxml_is_rejected(data, said):
    assert said in str(rejected_by_check(data))


# --- anything at all is a file or a Rejected --------------------------------------------------


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_rejected(data):
    with pytest.raises(Rejected):
        paxml.check_paxml(io.BytesIO(data))
    with pytest.raises(Rejected):
        paxml.read_paxml(data)


FRAGMENTS = [
    "<?xml version='1.0' encoding='UTF-8'?>",
    "<paxml>",
    "</paxml>",
    "<header>",
    "</header>",
    "<format>LÖNIN</format>",
    "<version>2.0</version>",
    "<datum>2026-03-31</datum>",
    "<foretagorgnr>2120000142</foretagorgnr>",
    "<foretagnamn>Ekerö</foretagnamn>",
    "<lonetransaktioner>",
    "</lonetransaktioner>",
    '<lonetrans anstid="E-1" persnr="193701205837">',
    "</lonetrans>",
    "<belopp>1.00</belopp>",
    '<resenheter><resenhet dimid="1" id="K"/></resenheter>',
    "<!DOCTYPE paxml>",
    '<!ENTITY a "b">',
    "&a;",
    "&amp;",
    "<![CDATA[x]]>",
    "<!-- c -->",
    "<?pi x?>",
    "<",
    ">",
    " ",
    "\n",
]


@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=10), max_size=30), st.sampled_from(["utf-8", "utf-16"]))
@settings(max_examples=200)
def test_arbitrary_xml_like_text_is_rejected_or_read(parts, encoding):
    checked_or_rejected("".join(parts).encode(encoding, errors="surrogatepass"))


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_a_damaged_file_is_read_or_rejected_and_nothing_else(data):
    start = data.draw(st.integers(0, len(GOOD)))
    end = data.draw(st.integers(start, min(len(GOOD), start + 40)))
    inserted = data.draw(st.binary(max_size=20) | st.sampled_from([b"<", b">", b"&", b"]]>", b"<x/>", b"\n"]))
    checked_or_rejected(GOOD[:start] + inserted + GOOD[end:])


# --- DTDs and entities ------------------------------------------------------------------------

BILLION_LAUGHS = billion_laughs("<paxml><header><format>&lol9;</format></header></paxml>")

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE paxml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<paxml><header><format>&secret;</format></header></paxml>"""

EXTERNAL_ENTITY_UTF16 = EXTERNAL_ENTITY.decode().replace('"1.0"', '"1.0" encoding="UTF-16"').encode("utf-16")

IN_A_VALID_FILE = GOOD.replace(b"<paxml>", b'<!DOCTYPE paxml [<!ENTITY a "Arvode">]>\n<paxml>').replace(
    b"<benamning>Arvode", b"<benamning>&a;"
)

BEYOND_THE_FIRST_CHUNK = IN_A_VALID_FILE.replace(b"<!DOCTYPE", b"<!--" + b" " * paxml.CHUNK + b"-->\n<!DOCTYPE")


@pytest.mark.parametrize(
    "data",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_ENTITY_UTF16, IN_A_VALID_FILE, BEYOND_THE_FIRST_CHUNK],
    ids=[
        "billion-laughs",
        "external-entity",
        "external-entity-utf16",
        "entity-in-a-valid-file",
        "after-a-long-comment",
    ],
)
def test_a_dtd_or_entity_is_refused_not_expanded(data):
    error = rejected_by_check(data)
    assert error.reason == "DTD and entities are not allowed"
    with pytest.raises(Rejected) as caught:
        paxml.read_paxml(data)
    assert caught.value.reason == "DTD and entities are not allowed"


# --- a large run ------------------------------------------------------------------------------


def test_writing_200000_lines_from_a_generator_keeps_memory_flat(tmp_path):
    template = a_line()
    count = 200_000

    def lines():
        for n in range(count):
            yield template.model_copy(update={"employee_id": f"E-{n}", "amount": Decimal(n) / 100})

    path = tmp_path / paxml.file_name("0125", Period(2026, 3), 1)
    tracemalloc.start()
    try:
        with path.open("wb") as target:
            assert paxml.write_paxml(target, a_header(), lines()) == count
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.1f} MiB while writing"
    assert path.stat().st_size > 50 * 2**20  # the file itself is far larger than what was held
    with path.open("rb") as source:
        assert paxml.check_paxml(source) == count
