"""The XML codec of orders and acknowledgements: round trips, the XSD, and every bad input a Rejected saying where."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters import order_xml
from core.errors import Rejected
from schemas.identity import generate_organisation_number, generate_personnummer
from schemas.orders import Address, Order, OrderAcknowledgement, OrderedService, OrderReceipt, Person
from tests.xml_attacks import billion_laughs

XSD = etree.XMLSchema(etree.parse(str(order_xml.XSD_PATH)))

xml_char = st.characters(exclude_categories=("Cs",), exclude_characters="\ufffe\uffff").filter(
    lambda char: not "\x7f" <= char <= "\x9f" and (char >= " " or char in "\t\n\r")
)  # what XML can carry and the documents take: no control characters but tab and line breaks


def text(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(xml_char, min_size=min_size, max_size=max_size)


def optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


seeds = st.integers(0, 2**32)
personnummer = st.builds(
    lambda seed, samordning: generate_personnummer(random.Random(seed), coordination=samordning), seeds, st.booleans()
)
organisation_number = st.builds(lambda seed: generate_organisation_number(random.Random(seed)), seeds)
order_id = st.from_regex(r"[A-Za-z0-9-]{1,40}", fullmatch=True)
dates = st.dates()
timezones = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=1)), dt.timezone(-dt.timedelta(hours=9.5))])


@st.composite
def services(draw) -> OrderedService:
    valid_from = draw(st.dates(max_value=dt.date(9000, 1, 1)))
    return OrderedService(
        code=draw(st.from_regex(r"[A-Z0-9][A-Z0-9-]{0,19}", fullmatch=True)),
        category=draw(st.sampled_from(["service", "omsorg"])),
        hours_per_month=draw(st.decimals(min_value=0, max_value=744, places=2)),
        valid_from=valid_from,
        valid_to=draw(optional(st.builds(lambda days: valid_from + dt.timedelta(days=days), st.integers(0, 3000)))),
    )


@st.composite
def persons(draw) -> Person:
    protected = draw(st.booleans())
    address = (
        None
        if protected
        else draw(
            optional(
                st.builds(
                    Address,
                    street=text(1, 100),
                    postcode=st.from_regex(r"[0-9]{3} ?[0-9]{2}", fullmatch=True),
                    city=text(1, 60),
                )
            )
        )
    )
    return Person(
        personnummer=draw(personnummer),
        name=draw(text(1, 120)),
        address=address,
        phone=draw(optional(text(0, 30))),
        protected_identity=protected,
    )


@st.composite
def orders(draw) -> Order:
    kind = draw(st.sampled_from(["new", "amend", "cancel"]))
    return Order(
        order_id=draw(order_id),
        version=1 if kind == "new" else draw(st.integers(1, 10**6)),
        kind=kind,
        case_ref=draw(text(1, 40)),
        effective_date=draw(dates),
        person=draw(persons()),
        provider_org=draw(organisation_number),
        services=draw(st.lists(services(), min_size=0 if kind == "cancel" else 1, max_size=4)),
        double_staffing=draw(st.booleans()),
        instructions=draw(optional(text(0, 300))),
        cancel_reason=draw(st.sampled_from(["moved", "deceased", "changed_provider", "ended", "other"]))
        if kind == "cancel"
        else None,
    )


@st.composite
def acknowledgements(draw) -> OrderAcknowledgement:
    status = draw(st.sampled_from(["accepted", "rejected"]))
    return OrderAcknowledgement(
        order_id=draw(order_id),
        version=draw(st.integers(1, 10**6)),
        status=status,
        reason=draw(text(1, 200) if status == "rejected" else optional(text(0, 200))),
        contact_person=draw(optional(text(0, 120))),
        provider_org=draw(organisation_number),
    )


receipts = st.builds(
    OrderReceipt, order_id=order_id, version=st.integers(1, 10**6), received_at=st.datetimes(timezones=timezones)
)


def an_order(**changes) -> Order:
    rng = random.Random(7)
    order = Order(
        order_id="ORD-1",
        version=1,
        kind="new",
        case_ref="ÄO-2026-17",
        effective_date=dt.date(2026, 3, 1),
        person=Person(
            personnummer=generate_personnummer(rng),
            name="Testa Testsson",
            address=Address(street="Provgatan 1", postcode="123 45", city="Ekerö"),
            phone="070-1234567",
        ),
        provider_org=generate_organisation_number(rng),
        services=[
            OrderedService(code="HT-OMS", category="omsorg", hours_per_month="12.50", valid_from=dt.date(2026, 3, 1))
        ],
    )
    return order.model_copy(update=changes)


def rejected(decode, data: bytes) -> Rejected:
    with pytest.raises(Rejected) as caught:
        decode(data)
    return caught.value


# --- round trips ------------------------------------------------------------------------------


@given(orders())
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_an_order_round_trips_and_its_encoding_is_valid_against_the_xsd(order):
    data = order_xml.encode_order(order)
    XSD.assertValid(etree.fromstring(data))
    assert order_xml.decode_order(data) == order


@given(acknowledgements())
def test_an_acknowledgement_round_trips_and_its_encoding_is_valid_against_the_xsd(ack):
    data = order_xml.encode_acknowledgement(ack)
    XSD.assertValid(etree.fromstring(data))
    assert order_xml.decode_acknowledgement(data) == ack


@given(receipts)
def test_a_receipt_round_trips_and_its_encoding_is_valid_against_the_xsd(receipt):
    data = order_xml.encode_receipt(receipt)
    XSD.assertValid(etree.fromstring(data))
    assert order_xml.decode_receipt(data) == receipt


def test_the_encoding_carries_the_canonical_digits_in_utf8():
    order = an_order()
    data = order_xml.encode_order(order)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(data)
    ns = {"o": order_xml.NS}
    assert root.findtext("o:person/o:personnummer", namespaces=ns) == order.person.personnummer.digits
    assert root.findtext("o:provider_org", namespaces=ns) == order.provider_org.digits
    assert "Ekerö".encode() in data


# --- anything at all is an Order or a Rejected ------------------------------------------------


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_rejected(data):
    for decode in (order_xml.decode_order, order_xml.decode_acknowledgement, order_xml.decode_receipt):
        with pytest.raises(Rejected):
            decode(data)


@given(st.text(max_size=2000))
def test_arbitrary_text_is_rejected(text_):
    for data in (text_.encode(), text_.encode("utf-16"), text_):
        with pytest.raises(Rejected):
            order_xml.decode_order(data)


@given(st.data())
@settings(max_examples=300)
def test_a_damaged_order_file_decodes_or_is_rejected_and_nothing_else(data):
    original = order_xml.encode_order(an_order(instructions="Ring på två gånger"))
    start = data.draw(st.integers(0, len(original)))
    end = data.draw(st.integers(start, min(len(original), start + 40)))
    inserted = data.draw(st.binary(max_size=20) | st.sampled_from([b"<", b">", b"&", b"]]>"]))
    damaged = original[:start] + inserted + original[end:]
    try:
        order = order_xml.decode_order(damaged)
    except Rejected as error:
        assert error.where
    else:
        assert isinstance(order, Order)


# --- bad inputs name the element and the line --------------------------------------------------


def test_a_wrong_check_digit_names_the_personnummer_without_echoing_it():
    order = an_order()
    digits = order.person.personnummer.digits
    wrong = digits[:11] + str((int(digits[11]) + 1) % 10)
    error = rejected(order_xml.decode_order, order_xml.encode_order(order).replace(digits.encode(), wrong.encode()))
    assert error.reason == "wrong check digit"
    assert error.where == "line 2: person/personnummer"


def test_a_personnummer_of_ten_digits_is_refused_by_the_xsd_without_echoing_it():
    order = an_order()
    digits = order.person.personnummer.digits
    data = order_xml.encode_order(order).replace(digits.encode(), digits[2:].encode())
    error = rejected(order_xml.decode_order, data)
    assert error.where == "line 2: person/personnummer"
    assert "pattern" in error.reason and digits[2:] not in str(error)


def test_a_missing_element_is_named():
    data = order_xml.encode_order(an_order()).replace(b"<case_ref>\xc3\x84O-2026-17</case_ref>", b"")
    error = rejected(order_xml.decode_order, data)
    assert "case_ref" in error.reason and "effective_date" in error.where


def test_an_element_in_a_list_is_named_with_its_position():
    service = OrderedService(code="HT-2", category="service", hours_per_month=1, valid_from=dt.date(2026, 1, 1))
    order = an_order(services=[*an_order().services, service])
    data = order_xml.encode_order(order).replace(b">1</hours_per_month>", b">800</hours_per_month>")
    assert rejected(order_xml.decode_order, data).where == "line 2: services/service[2]/hours_per_month"


def test_a_broken_rule_of_the_model_names_the_order():
    data = order_xml.encode_order(an_order(kind="cancel", cancel_reason="moved")).replace(
        b"<cancel_reason>moved</cancel_reason>", b""
    )
    error = rejected(order_xml.decode_order, data)
    assert "cancel_reason" in error.reason and error.where == "line 2: order"


def test_a_rejection_without_a_reason_is_refused():
    ack = OrderAcknowledgement(
        order_id="ORD-1", version=1, status="rejected", reason="full", provider_org=an_order().provider_org
    )
    data = order_xml.encode_acknowledgement(ack).replace(b"<reason>full</reason>", b"")
    assert "reason" in rejected(order_xml.decode_acknowledgement, data).reason


def test_a_document_of_another_kind_is_refused():
    ack = OrderAcknowledgement(order_id="ORD-1", version=1, status="accepted", provider_org=an_order().provider_org)
    error = rejected(order_xml.decode_order, order_xml.encode_acknowledgement(ack))
    assert "expected the element order" in error.reason


BILLION_LAUGHS = billion_laughs('<order xmlns="urn:casehub:lov:orders:1"><order_id>&lol9;</order_id></order>')

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE order [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<order xmlns="urn:casehub:lov:orders:1"><order_id>&secret;</order_id></order>"""


EXTERNAL_ENTITY_UTF16 = EXTERNAL_ENTITY.decode().replace('"1.0"', '"1.0" encoding="UTF-16"').encode("utf-16")


@pytest.mark.parametrize(
    "data",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_ENTITY_UTF16],
    ids=["billion-laughs", "external-entity", "external-entity-utf16"],
)
def test_a_dtd_or_entity_is_refused(data):
    assert rejected(order_xml.decode_order, data).reason == "DTD and entities are not allowed"


def test_an_undeclared_entity_is_refused():
    data = order_xml.encode_order(an_order()).replace(b"Testa Testsson", b"&name;")
    assert "not well-formed" in rejected(order_xml.decode_order, data).reason


def test_an_oversized_document_is_refused_before_parsing():
    data = order_xml.encode_order(an_order(instructions="x" * 2000))
    padded = data.replace(b"<order_id>", b" " * order_xml.MAX_BYTES + b"<order_id>")
    error = rejected(order_xml.decode_order, padded)
    assert error.where == "document" and "over" in error.reason


def test_an_address_of_a_person_with_protected_identity_is_never_encoded():
    order = an_order()
    hidden = order.model_copy(update={"person": order.person.model_copy(update={"protected_identity": True})})
    with pytest.raises(Rejected) as caught:
        order_xml.encode_order(hidden)
    assert caught.value.where == "person/address"


def test_a_character_xml_cannot_carry_is_refused_when_encoding():
    with pytest.raises(Rejected) as caught:
        order_xml.encode_order(an_order(instructions="bell \x07"))
    assert caught.value.where == "instructions"
