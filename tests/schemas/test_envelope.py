"""The Envelope, money and periods: round trips and the errors that name the field."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from schemas.documents import DOCUMENTS, document_of, json_schemas
from schemas.envelope import Envelope
from schemas.money import Money, Period, round_ore

PAYLOAD = {
    "case_ref": "ÄO-000001",
    "person": "19410708-6995",
    "kind": "note",
    "recorded_at": "2026-03-02T08:00:00+01:00",
    "recorded_by": "HANDL1",
}

envelopes = st.builds(
    Envelope,
    type=st.sampled_from(sorted(DOCUMENTS)),
    tenant=st.from_regex(r"\A\d{4}\Z"),
    source=st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=20),
    correlation_id=st.none() | st.uuids().map(str),
    occurred_at=st.datetimes(timezones=st.just(dt.timezone(dt.timedelta(hours=1)))),
    payload=st.dictionaries(st.text(max_size=10), st.none() | st.integers() | st.text(max_size=10), max_size=5),
)


@given(envelopes)
def test_envelope_round_trips_through_json(envelope):
    assert Envelope.model_validate_json(envelope.model_dump_json()) == envelope


def test_the_document_is_validated_and_normalised():
    envelope = Envelope(type="case.event_recorded", tenant="0125", source="cs", payload=PAYLOAD)
    event = document_of(envelope)
    assert event.person.digits == "194107086995"
    assert event.model_dump(mode="json")["person"] == "194107086995"


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"tenant": "125"}, "tenant", "kommunkod"),
        ({"occurred_at": "2026-03-02T08:00:00"}, "occurred_at", "timezone"),
        ({"type": "Not A Type"}, "type", "pattern"),
        ({"extra": 1}, "extra", "Extra inputs"),
    ],
)
def test_an_invalid_envelope_names_the_field(change, field, reason):
    data = {"type": "case.event_recorded", "tenant": "0125", "source": "cs", "payload": PAYLOAD} | change
    with pytest.raises(ValidationError) as error:
        Envelope.model_validate(data)
    assert error.value.errors()[0]["loc"] == (field,)
    assert reason in str(error.value)


def test_caused_envelopes_keep_tenant_and_correlation():
    first = Envelope(type="case.event_recorded", tenant="0125", source="cs", payload=PAYLOAD)
    second = first.caused("hub.receipt", "casehub/echo", {})
    third = second.caused("hub.receipt", "casehub/echo", {})
    assert (second.tenant, second.correlation_id, second.causation_id) == ("0125", first.id, first.id)
    assert (third.correlation_id, third.causation_id) == (first.id, second.id)


def test_unknown_document_type():
    with pytest.raises(ValueError, match="unknown document type"):
        document_of(Envelope(type="no.such", tenant="0125", source="x"))


def test_every_document_has_a_json_schema():
    schemas = json_schemas()
    assert set(schemas) == {"envelope", *DOCUMENTS}
    assert all(schema["type"] == "object" for schema in schemas.values())


class Line(BaseModel):
    amount: Money
    period: Period


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=2), st.integers(1900, 2999), st.integers(1, 12))
def test_money_and_period_round_trip(amount, year, month):
    line = Line(amount=amount, period=Period(year, month))
    text = line.model_dump_json()
    assert Line.model_validate_json(text) == line
    assert f'"{amount:.2f}"' in text and f'"{year:04d}-{month:02d}"' in text


def test_rounding_is_half_up_to_ore():
    assert round_ore(Decimal("189.005")) == Decimal("189.01")
    assert round_ore(Decimal("742.504")) == Decimal("742.50")
    assert round_ore(Decimal("-0.005")) == Decimal("-0.01")


def test_period_bounds_are_local_midnights():
    march = Period.parse("2026-03")
    assert (march.first_day, march.last_day, march.days) == (dt.date(2026, 3, 1), dt.date(2026, 3, 31), 31)
    utc = dt.timezone.utc
    length = march.ends_at().astimezone(utc) - march.starts_at().astimezone(utc)
    assert length == dt.timedelta(days=31, hours=-1)  # summer time begins 29 March
    assert Period.parse("2026-12").next() == Period(2027, 1)
    assert Period.of(dt.date(2024, 2, 10)).days == 29


@pytest.mark.parametrize("text", ["2026-13", "2026-3", "26-03", "", "2026-03-01"])
def test_bad_periods_are_refused_with_a_reason(text):
    with pytest.raises(ValidationError, match="period|month"):
        Line(amount=Decimal(1), period=text)


@given(st.text())
def test_period_parse_never_crashes(text):
    try:
        Period.parse(text)
    except ValueError:
        pass
