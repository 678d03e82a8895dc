"""Reading what partners send: bounded JSON, and envelopes only of the types the sender may send."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.config import HubConfig
from core.errors import NotAllowed, Rejected
from core.intake import MAX_NUMBER_CHARS, envelopes_from_json, parse_json
from schemas.documents import DOCUMENTS

CONFIG = HubConfig.model_validate({"tenants": [{"code": "0125", "name": "Ekerö kommun"}]})

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_json_round_trips(value):
    assert parse_json(json.dumps(value).encode()) == value


@given(st.binary(max_size=500))
def test_arbitrary_bytes_are_a_value_or_rejected(data):
    try:
        parse_json(data)
    except Rejected as error:
        assert error.where == "body"


@pytest.mark.parametrize(
    "data", [b"[" * 100_000, b"1" * (MAX_NUMBER_CHARS + 1), b"1e" + b"9" * 60, b"NaN", b"[Infinity]", b"\xff\xfe"]
)
def test_what_the_parser_cannot_take_is_rejected(data):
    with pytest.raises(Rejected):
        parse_json(data)


@given(
    type_=st.sampled_from(sorted(DOCUMENTS)),
    sender=st.sampled_from(["case_system", "provider", "visit_vendor", "economy", "payroll"]),
)
def test_a_type_the_sender_may_not_send_is_not_allowed_before_its_document_is_read(type_, sender):
    body = json.dumps({"type": type_, "tenant": "0125", "source": "x", "payload": {}}).encode()
    try:
        envelopes_from_json(body, CONFIG, sender=sender, max_batch=10)
    except NotAllowed as error:
        assert sender not in DOCUMENTS[type_].senders and error.where == "type"
    except Rejected as error:  # an empty payload is not the document: only a sender that may send it gets here
        assert sender in DOCUMENTS[type_].senders and error.where.startswith("payload")
    else:
        raise AssertionError("an empty payload was taken")
