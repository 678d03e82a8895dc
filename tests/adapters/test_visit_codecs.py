"""Visit codecs (specs/mobile-reporting.md): the JSON batch and poll page, the CSV file, file names."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import time
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.visit_codecs import (
    FIELDS,
    decode_poll_page,
    decode_visit_batch,
    encode_visit,
    encode_visit_batch,
    parse_visit_file_name,
    read_visit_csv,
    visit_file_pattern,
    write_visit_csv,
)
from core.errors import Rejected
from schemas.api import VISIT_EXAMPLE
from schemas.bounded import MAX_INT
from schemas.identity import generate_organisation_number, generate_personnummer
from schemas.visits import Visit, VisitRejection

EXAMPLE = VISIT_EXAMPLE  # the contract's example, its third version
PNR = EXAMPLE["customer_pnr"]


def example(**changes) -> dict:
    return {**EXAMPLE, **changes}


def body(*visits) -> bytes:
    return json.dumps({"visits": list(visits)}).encode()


def csv_bytes(visits) -> bytes:
    buffer = io.BytesIO()
    write_visit_csv(visits, buffer)
    return buffer.getvalue()


def read_all(data: bytes) -> list[tuple[int, Visit | VisitRejection]]:
    return list(read_visit_csv(io.BytesIO(data)))


# --- hypothesis: visits ----------------------------------------------------------------------

text_chars = st.characters(exclude_categories=("Cs", "Cc"))  # no control characters: the documents refuse them
texts = st.text(text_chars, min_size=1, max_size=40)
offsets = st.integers(-12 * 60, 14 * 60).map(lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)))


@st.composite
def periods(draw):
    """(start, end) within the contract's rules: end not before start, at most 24 hours."""
    start = draw(st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 1, 1), timezones=offsets))
    end = draw(st.none() | st.timedeltas(dt.timedelta(0), dt.timedelta(hours=24)).map(lambda d: start + d))
    if end is not None:
        end = end.astimezone(draw(offsets))
    return draw(st.sampled_from([(start, end), (None, None)]))


@st.composite
def visits(draw) -> Visit:
    rng = draw(st.randoms(use_true_random=False))
    version = draw(st.integers(1, MAX_INT))
    confirmation = draw(st.sampled_from(["nfc", "lock", "button", "manual"]))
    planned, actual = draw(periods()), draw(periods())
    return Visit(
        visit_id=draw(st.text(text_chars, min_size=1, max_size=64)),
        version=version,
        provider_org=generate_organisation_number(rng),
        customer_pnr=generate_personnummer(rng, coordination=draw(st.booleans())),
        employee_id=draw(texts),
        planned_start=planned[0],
        planned_end=planned[1],
        actual_start=actual[0],
        actual_end=actual[1],
        confirmation=confirmation,
        tag_id=draw(st.none() | texts),
        manual_reason=draw(texts if confirmation == "manual" else st.none() | texts),
        services=draw(st.lists(st.from_regex(r"[^,\s\x00-\x1f\x7f-\x9f]{1,40}", fullmatch=True), max_size=5)),
        double_staffing=draw(st.booleans()),
        declined=draw(st.booleans()),
        approved=draw(st.booleans()),
        edit_reason=draw(texts if version > 1 else st.none() | texts),
    )


@given(st.lists(visits(), max_size=5))
def test_json_batch_round_trip(batch):
    decoded, rejections = decode_visit_batch(encode_visit_batch(batch))
    assert rejections == []
    assert decoded == batch
    assert [encode_visit(v) for v in decoded] == [encode_visit(v) for v in batch]


@given(st.lists(visits(), max_size=5))
def test_csv_round_trip(batch):
    rows = read_all(csv_bytes(batch))
    assert [visit for _, visit in rows] == batch
    assert [encode_visit(v) for _, v in rows] == [encode_visit(v) for v in batch]


def test_encode_visit_writes_the_contract():
    visit = decode_visit_batch(body(EXAMPLE))[0][0]
    assert encode_visit(visit) == EXAMPLE
    assert encode_visit(visit)["customer_pnr"] == PNR and encode_visit(visit)["provider_org"] == "5560360793"


# --- hypothesis: anything at all is refused cleanly ------------------------------------------

json_values = st.recursive(  # JSON as the contract has it: numbers of reasonable length, no NaN or Infinity
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def decodes_or_rejects(decode, data):
    try:
        decode(data)
    except Rejected as error:
        assert error.where


@given(st.binary())
def test_arbitrary_bytes_are_rejected_or_decoded(data):
    decodes_or_rejects(decode_visit_batch, data)
    decodes_or_rejects(decode_poll_page, data)
    decodes_or_rejects(read_all, data)


@pytest.mark.parametrize("number", ["1" * 5000, "NaN", "-Infinity", "1e" + "9" * 50])
def test_a_number_the_parser_cannot_take_rejects_the_body(number):
    with pytest.raises(Rejected, match="number|NaN|Infinity") as raised:
        decode_visit_batch(b'{"visits": [{"version": %s}]}' % number.encode())
    assert raised.value.where == "body"


def test_nesting_beyond_what_the_parser_takes_rejects_the_body():
    with pytest.raises(Rejected, match="nested too deeply"):
        decode_visit_batch(b'{"visits": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")


@given(st.lists(st.fixed_dictionaries({}, optional={name: json_values for name in FIELDS}) | json_values, max_size=4))
def test_arbitrary_visits_are_each_decoded_or_rejected(items):
    visits_, rejections = decode_visit_batch(body(*items))
    assert len(visits_) + len(rejections) == len(items)
    for rejection in rejections:
        assert rejection.reason.split(":")[0].split(".")[0] in (*FIELDS, "visit")


RULE_FIELD = {"confirmation": "manual_reason", "planned_start": "planned_end", "actual_start": "actual_end"}
"""The field a rule names when a change to another field breaks it."""


@given(st.sampled_from(FIELDS), json_values)
def test_one_wrong_field_is_named_and_the_rest_kept(field, value):
    batch = body(example(visit_id="A"), example(**{field: value}), example(visit_id="B"))
    decoded, rejections = decode_visit_batch(batch)
    assert len(decoded) + len(rejections) == 3
    assert decoded[0].visit_id == "A" and decoded[-1].visit_id == "B"
    for rejection in rejections:
        named = {part.split(":")[0].split(".")[0] for part in rejection.reason.split("; ")}
        assert named <= {field, RULE_FIELD.get(field)}, rejection.reason
        assert PNR not in rejection.reason


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=200))
def test_arbitrary_text_under_a_header_is_rejected_or_decoded(text):
    data = (";".join(FIELDS) + "\n" + text).encode()
    try:
        rows = read_all(data)
    except Rejected as error:
        assert error.where.startswith("line ")
        return
    for line, row in rows:
        assert line >= 2
        if isinstance(row, VisitRejection):
            assert row.reason.startswith(f"line {line}: ")


def test_nesting_too_deep_is_rejected():
    with pytest.raises(Rejected) as caught:
        decode_visit_batch(b'{"visits": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}")
    assert caught.value.where == "body"
    _, rejections = decode_visit_batch(b'{"visits": [{"visit_id": "X", "tag_id": ' + b"[" * 900 + b"]" * 900 + b"}]}")
    assert rejections[0].visit_id == "X"


# --- the contract's invalid visits -----------------------------------------------------------


def without(field: str) -> dict:
    return {name: value for name, value in EXAMPLE.items() if name != field}


@pytest.mark.parametrize(
    ("visit", "reason"),
    [
        pytest.param(without("version"), "version: Field required", id="missing version"),
        pytest.param(without("customer_pnr"), "customer_pnr: Field required", id="missing customer_pnr"),
        pytest.param(example(employee_id=None), "employee_id: Field required", id="null employee_id"),
        pytest.param(example(version="3"), "version: Input should be a valid integer", id="version as text"),
        pytest.param(example(version=3.0), "version: Input should be a valid integer", id="version as float"),
        pytest.param(example(approved="yes"), "approved: Input should be a valid boolean", id="approved as text"),
        pytest.param(example(double_staffing=1), "double_staffing: Input should be a valid boolean", id="bool as 1"),
        pytest.param(example(services="HT-OMS"), "services: Input should be a valid array", id="services not a list"),
        pytest.param(
            example(services=["HT-OMS,HT-SERV"]), "services.0: String should match pattern", id="comma in code"
        ),
        pytest.param(example(employee_id=1042), "employee_id: Input should be a valid string", id="id as number"),
        pytest.param(
            example(confirmation="sms"),
            "confirmation: Input should be 'nfc', 'lock', 'button' or 'manual'",
            id="unknown confirmation",
        ),
        pytest.param(
            example(planned_start=1772434800), "planned_start: Input should be a valid datetime", id="epoch time"
        ),
        pytest.param(
            example(actual_start="2026-03-02T08:04:12"),
            "actual_start: Input should have timezone info",
            id="naive time",
        ),
        pytest.param(
            example(actual_end="2026-03-02T08:00:00+01:00"),
            "actual_end: actual_end is before actual_start",
            id="end before start",
        ),
        pytest.param(
            example(planned_end="2026-03-03T08:00:01+01:00"),
            "planned_end: the planned visit is longer than 24 hours",
            id="longer than 24 hours",
        ),
        pytest.param(example(customer_pnr="194107086996"), "customer_pnr: wrong check digit", id="pnr check digit"),
        pytest.param(example(customer_pnr="194113086995"), "customer_pnr: impossible date", id="pnr date"),
        pytest.param(example(customer_pnr="4107086995"), "customer_pnr: expected 12 digits", id="pnr without century"),
        pytest.param(
            example(customer_pnr=int(PNR)), "customer_pnr: not a personnummer: expected a string", id="pnr number"
        ),
        pytest.param(example(provider_org="5560360794"), "provider_org: wrong check digit", id="org check digit"),
        pytest.param(
            example(provider_org="5510360793"), "provider_org: not an organisation number", id="org third digit"
        ),
        pytest.param(
            example(confirmation="manual"),
            "manual_reason: manual_reason is required when confirmation is manual",
            id="manual without reason",
        ),
        pytest.param(
            example(confirmation="manual", manual_reason=""),
            "manual_reason: manual_reason is required",
            id="manual with empty reason",
        ),
        pytest.param(
            example(edit_reason=None),
            "edit_reason: edit_reason is required when version > 1",
            id="version 3 without edit_reason",
        ),
        pytest.param(["not", "an", "object"], "visit: expected a JSON object", id="not an object"),
    ],
)
def test_each_invalid_visit_is_rejected_naming_the_field_and_the_rest_kept(visit, reason):
    decoded, rejections = decode_visit_batch(body(example(visit_id="A"), visit, example(visit_id="B")))
    assert [v.visit_id for v in decoded] == ["A", "B"]
    (rejection,) = rejections
    assert rejection.reason.startswith(reason), rejection.reason
    assert rejection.visit_id == (visit.get("visit_id") if isinstance(visit, dict) else None)
    assert PNR not in rejection.reason and "6995" not in rejection.reason


def test_several_errors_of_one_visit_are_all_named():
    (rejection,) = decode_visit_batch(body(example(version="x", approved="x", visit_id=None)))[1]
    assert rejection == VisitRejection(
        visit_id=None,
        reason="visit_id: Field required; "
        "version: Input should be a valid integer; "
        "approved: Input should be a valid boolean",
    )


def test_leniencies_unknown_fields_null_and_offsets():
    visit = dict(
        example(
            extra={"any": "thing"},
            planned_start=None,
            planned_end=None,
            double_staffing=None,
            tag_id="",
            actual_start="2026-03-02T07:04:12Z",
        )
    )
    del visit["services"]
    (decoded,), rejections = decode_visit_batch(body(visit))
    assert rejections == []
    assert decoded.planned_start is None and decoded.double_staffing is False and decoded.services == []
    assert decoded.tag_id is None
    assert decoded.actual_start == dt.datetime(2026, 3, 2, 8, 4, 12, tzinfo=dt.timezone(dt.timedelta(hours=1)))


# --- the whole body --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"", "body"),
        (b"\xff\xfe\x00garbage", "body"),
        (b"<visits/>", "body"),
        (b"[]", "body"),
        (b'"visits"', "body"),
        (b"{}", "visits"),
        (b'{"visits": {"visit_id": "A"}}', "visits"),
        (b'{"visits": null}', "visits"),
    ],
)
def test_an_unreadable_body_is_rejected_naming_where(data, where):
    for decode in (decode_visit_batch, decode_poll_page):
        with pytest.raises(Rejected) as caught:
            decode(data)
        assert caught.value.where == where


def test_a_push_of_5000_visits_is_rejected_as_over_1000():
    with pytest.raises(Rejected) as caught:
        decode_visit_batch(body(*[EXAMPLE] * 5000))
    assert caught.value.where == "visits" and "5000 visits, at most 1000" in caught.value.reason
    assert len(decode_visit_batch(body(*[EXAMPLE] * 1000))[0]) == 1000


def test_a_poll_page():
    page = {"visits": [EXAMPLE, example(customer_pnr="x")], "next_cursor": "c-42", "has_more": True}
    visits_, rejections, cursor, has_more = decode_poll_page(json.dumps(page).encode())
    assert [v.visit_id for v in visits_] == ["V-2026-000123"] and len(rejections) == 1
    assert (cursor, has_more) == ("c-42", True)
    assert decode_poll_page(b'{"visits": [], "next_cursor": "", "has_more": false}') == ([], [], None, False)
    assert decode_poll_page(b'{"visits": []}') == ([], [], None, False)


@pytest.mark.parametrize(
    ("page", "where"),
    [
        ({"visits": [], "has_more": True}, "next_cursor"),
        ({"visits": [], "next_cursor": "", "has_more": True}, "next_cursor"),
        ({"visits": [], "next_cursor": 42, "has_more": False}, "next_cursor"),
        ({"visits": [], "next_cursor": "c", "has_more": "yes"}, "has_more"),
    ],
)
def test_a_poll_page_that_cannot_go_on_is_rejected(page, where):
    with pytest.raises(Rejected) as caught:
        decode_poll_page(json.dumps(page).encode())
    assert caught.value.where == where


# --- CSV -------------------------------------------------------------------------------------

GOOD = decode_visit_batch(body(example(visit_id="A"), example(visit_id="B"), example(visit_id="C")))[0]


def test_a_broken_row_among_good_rows_is_rejected_with_its_line():
    lines = csv_bytes(GOOD).decode().splitlines(keepends=True)
    lines[2] = lines[2].replace(PNR, PNR[:-1] + "6")
    lines.insert(3, "D;1;too;few\r\n")
    rows = read_all("".join(lines).encode())
    assert [line for line, _ in rows] == [2, 3, 4, 5]
    assert [row.visit_id for _, row in rows if isinstance(row, Visit)] == ["A", "C"]
    assert rows[1][1] == VisitRejection(visit_id="B", reason="line 3: customer_pnr: wrong check digit")
    assert rows[2][1] == VisitRejection(visit_id=None, reason=f"line 4: expected {len(FIELDS)} fields, got 4")


def test_csv_leniencies_bom_column_order_unknown_columns_booleans_blank_lines():
    data = (
        "\ufeffnote;approved;customer_pnr;confirmation;visit_id;version;employee_id;provider_org;services;"
        "declined;double_staffing;actual_start;actual_end\r\n"
        f"hello;TRUE;{PNR};nfc;A;1;E1;5560360793;HT-OMS,HT-SERV;0;1;;\r\n"
        "\r\n"
        f"x;false;{PNR};button;B;1;E1;5560360793;;False;;2026-03-02T08:00:00+01:00;\n"
    )
    rows = read_all(data.encode())
    assert [line for line, _ in rows] == [2, 4]
    a, b = (row for _, row in rows)
    assert (a.approved, a.declined, a.double_staffing, a.services, a.actual_start) == (
        True,
        False,
        True,
        ["HT-OMS", "HT-SERV"],
        None,
    )
    assert (b.approved, b.double_staffing, b.services, b.actual_end) == (False, False, [], None)
    assert b.actual_start == dt.datetime(2026, 3, 2, 7, tzinfo=dt.timezone.utc)


def with_cells(**cells: str) -> bytes:
    """A one-row file of GOOD[0] with some cells' text replaced."""
    header, row = csv_bytes(GOOD[:1]).decode().splitlines()
    values = dict(zip(header.split(";"), row.split(";"), strict=True))  # GOOD needs no quoting
    values.update(cells)
    return f"{header}\n{';'.join(values.values())}\n".encode()


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ({"version": "x"}, "line 2: version: Input should be a valid integer"),
        ({"version": "9" * 5000}, "line 2: version: Input should be a valid integer"),
        ({"version": ""}, "line 2: version: Field required"),
        ({"approved": "yes"}, "line 2: approved: Input should be a valid boolean"),
        ({"actual_start": "2026-03-02T08:04:12"}, "line 2: actual_start: Input should have timezone info"),
        ({"actual_end": "2026-03-02T08:00:00+01:00"}, "line 2: actual_end: actual_end is before actual_start"),
        ({"services": "HT-OMS,"}, "line 2: services.1: String should match pattern"),
        ({"services": "HT-OMS, HT-SERV"}, "line 2: services.1: String should match pattern"),
        ({"customer_pnr": "410708-6995"}, "line 2: customer_pnr: expected 12 digits"),
        ({"confirmation": "manual", "manual_reason": ""}, "line 2: manual_reason: manual_reason is required"),
    ],
)
def test_a_bad_cell_names_line_and_field(cells, reason):
    assert isinstance(read_all(with_cells())[0][1], Visit)
    ((line, row),) = read_all(with_cells(**cells))
    assert line == 2 and isinstance(row, VisitRejection) and row.reason.startswith(reason), row
    assert PNR not in row.reason


@pytest.mark.parametrize(
    ("data", "where", "says"),
    [
        (b"", "line 1", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "line 1", "not UTF-8"),
        (b"hello world\nthis is not a visit file\n", "line 1", "required column(s) missing: visit_id, version"),
        (
            "visit_id;version\nA;1\n".encode(),
            "line 1",
            "missing: provider_org, customer_pnr, employee_id, confirmation",
        ),
        ((";".join(FIELDS) + ";version\n").encode(), "line 1", "named twice: version"),
        (("\n".join([";".join(FIELDS)] * 3) + "\n\xe5\n").encode("latin-1"), "line 4", "not UTF-8"),
        ((";".join(FIELDS) + "\n").encode() + b"x" * (2 << 20), "line 2", "longer than"),
    ],
)
def test_an_unreadable_file_is_rejected_naming_the_line(data, where, says):
    with pytest.raises(Rejected) as caught:
        read_all(data)
    assert caught.value.where == where and says in caught.value.reason, caught.value


def test_a_row_spanning_lines_is_numbered_by_its_first_line():
    two = [GOOD[0].model_copy(update={"edit_reason": "first;\nsecond"}), GOOD[1]]
    assert read_all(csv_bytes(two)) == [(2, two[0]), (4, two[1])]


def test_a_header_only_file_has_no_rows():
    assert read_all(csv_bytes([])) == []


def test_file_names():
    assert visit_file_pattern("acme") == "visits_acme_*.csv"
    assert parse_visit_file_name("visits_acme-care_20260302_12.csv") == ("acme-care", dt.date(2026, 3, 2), 12)
    for name in (
        "visits_acme_20260230_1.csv",
        "visits_acme_2026030_1.csv",
        "visits_acme_20260302.csv",
        "visits_acme_20260302_1.csv.done",
        "visits__20260302_1.csv",
        "orders_acme_20260302_1.csv",
        "visits_a/b_20260302_1.csv",
        "visits_acme_20260302_x.csv",
    ):
        with pytest.raises(Rejected):
            parse_visit_file_name(name)


# --- a large file streams --------------------------------------------------------------------

ROWS = 30_000  # about 6 MB: enough for memory held per row to show against the file's size


def test_a_large_file_streams_with_flat_memory(tmp_path):
    path = tmp_path / "visits_acme_20260302_1.csv"
    header, row = csv_bytes(GOOD[:1]).split(b"\r\n", 1)
    with path.open("wb") as file:
        file.write(header + b"\r\n")
        for number in range(ROWS):
            file.write(row.replace(b"A;", f"V{number:07d};".encode(), 1))
    size = path.stat().st_size

    def read(limit: int | None = None) -> int:
        with path.open("rb") as file:
            return sum(isinstance(visit, Visit) for _, visit in itertools.islice(read_visit_csv(file), limit))

    began = time.perf_counter()
    assert read(ROWS // 10) == ROWS // 10
    rate = ROWS // 10 / (time.perf_counter() - began)
    tracemalloc.start()
    try:
        began = time.perf_counter()
        assert read() == ROWS
        traced_rate = ROWS / (time.perf_counter() - began)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(
        f"\n{ROWS} rows ({size / 1e6:.1f} MB): {rate:,.0f} rows/s ({traced_rate:,.0f} with tracemalloc on); "
        f"peak traced memory {peak / 1e3:.0f} kB"
    )
    assert peak < min(size / 4, 4 << 20)  # about 1 MB: mostly pydantic's bounded cache of JSON strings
