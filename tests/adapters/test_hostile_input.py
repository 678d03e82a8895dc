"""No input, however hostile, gets a 500 (architecture rule 12): property tests against every
inbound HTTP endpoint of a live hub, on both stores. Arbitrary JSON and bytes, documents whose
fields hold the wrong things (huge integers, control characters, lone surrogates, floats for
money), deep nesting and numbers thousands of digits long: the answer is always 2xx or 4xx, and
the connection it came on stays usable for the next request."""

from __future__ import annotations

import json
import logging
import os
import random
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.http_app import create_app
from adapters.order_xml import NS
from adapters.soap.server import SOAP_ENV
from core.config import HubConfig
from flows import routes
from sandbox.server import LiveServer
from schemas.documents import DOCUMENTS
from schemas.identity import generate_organisation_number
from schemas.orders import OrderAcknowledgement
from schemas.visits import Visit
from tests.conftest import TENANT

TOKENS = {"case_system": "hostile-case-system", "provider": "hostile-provider", "visit_vendor": "hostile-vendor"}
ORG = generate_organisation_number(random.Random(11)).digits
HOSTILE = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture
def hub_config() -> HubConfig:
    for kind, token in TOKENS.items():
        os.environ[f"CASEHUB_HOSTILE_{kind.upper()}"] = token
    return HubConfig.model_validate(
        {
            "tenants": [
                {
                    "code": TENANT,
                    "name": "Ekerö kommun",
                    "partners": [
                        {"id": "case-system", "kind": "case_system", "token_env": "CASEHUB_HOSTILE_CASE_SYSTEM"},
                        {
                            "id": "provider",
                            "kind": "provider",
                            "organisation_number": ORG,
                            "token_env": "CASEHUB_HOSTILE_PROVIDER",
                            "channel": {
                                "type": "rest",
                                "url": "http://127.0.0.1:9/",
                                "token_env": "CASEHUB_HOSTILE_PROVIDER",
                            },
                        },
                        {"id": "vendor", "kind": "visit_vendor", "token_env": "CASEHUB_HOSTILE_VISIT_VENDOR"},
                    ],
                }
            ]
        }
    )


@pytest.fixture
def clients(make_hub, monkeypatch):
    """A keep-alive client per partner kind against a live hub: a request that broke the server's
    side of a connection would fail the one after it. The clients' own request lines are not
    logged: their URLs hold the generated input, whose digits may look like a personnummer to the
    run's check of every log line (the hub's lines are still checked)."""
    monkeypatch.setattr(logging.getLogger("httpx"), "level", logging.WARNING)
    hub = make_hub(worker=False)
    with LiveServer(create_app(hub, routes(hub))) as server:
        made = {
            kind: httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"})
            for kind, token in TOKENS.items()
        }
        yield made
        for client in made.values():
            client.close()


# --- what a hostile partner sends ---------------------------------------------------------------

nasty_chars = st.sampled_from(["\x00", "\x1b", "\x7f", "\x85", "\ud800", "\udfff", "\u2028", "\ufeff", "'", "\\"])
texts = st.text(st.characters() | nasty_chars, max_size=30)
numbers = (
    st.integers(-(2**80), 2**80)
    | st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1])
    | st.floats(allow_nan=False, allow_infinity=False)
)
leaves = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4), max_leaves=12
)


def shaped_like(model, **known) -> st.SearchStrategy[dict]:
    """A dict with the model's field names (some of them), each holding anything at all."""
    fields = {name: json_values for name in model.model_fields if name not in known}
    return st.fixed_dictionaries(known, optional=fields)


def raw(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


bodies_beyond_json = (
    st.binary(max_size=300)
    | st.integers(1, 200_000).map(deep)
    | st.integers(1, 200_000).map(lambda depth: b'{"visits": ' + deep(depth) + b"}")
    | st.integers(30, 6000).map(lambda digits: b'{"version": ' + b"9" * digits + b"}")
    | st.sampled_from([b"NaN", b"[Infinity]", b'{"visits": [{"version": -Infinity}]}', b"\xef\xbb\xbf{}", b""])
)

envelopes = st.sampled_from(sorted(DOCUMENTS)).flatmap(
    lambda type_: st.fixed_dictionaries(
        {
            "type": st.just(type_),
            "tenant": st.just(TENANT) | texts,
            "source": texts | st.just("case-system"),
            "payload": shaped_like(DOCUMENTS[type_].model) | json_values,
        },
        optional={
            "id": texts | st.uuids().map(str),
            "correlation_id": json_values,
            "schema_version": numbers,
            "occurred_at": texts,
        },
    )
)
visits = shaped_like(Visit, visit_id=texts, version=numbers, provider_org=st.just(ORG) | texts)
acknowledgements = shaped_like(
    OrderAcknowledgement, order_id=texts, version=numbers, status=st.sampled_from(["accepted", "rejected"]) | texts
)


def no_server_error(answer: httpx.Response) -> None:
    assert answer.status_code < 500, (answer.status_code, answer.text[:500])


# --- the endpoints -------------------------------------------------------------------------------


@HOSTILE
@given(
    body=envelopes.map(raw)
    | st.lists(envelopes, min_size=1, max_size=3).map(raw)
    | json_values.map(raw)
    | bodies_beyond_json
)
def test_events_never_answer_a_server_error(clients, body):
    no_server_error(
        clients["case_system"].post("/api/v1/events", content=body, headers={"Content-Type": "application/json"})
    )


@HOSTILE
@given(
    body=st.lists(visits | json_values, max_size=4).map(lambda items: raw({"visits": items}))
    | json_values.map(raw)
    | bodies_beyond_json
)
def test_pushed_visits_never_answer_a_server_error(clients, body):
    no_server_error(clients["visit_vendor"].post("/api/v1/visits", content=body))


@HOSTILE
@given(order_id=texts, body=acknowledgements.map(raw) | json_values.map(raw) | bodies_beyond_json)
def test_acknowledgements_never_answer_a_server_error(clients, order_id, body):
    no_server_error(clients["provider"].post(f"/api/v1/orders/{escaped(order_id)}/acknowledgement", content=body))


@HOSTILE
@given(since=texts | numbers.map(str), limit=texts | numbers.map(str))
def test_the_feed_never_answers_a_server_error(clients, since, limit):
    no_server_error(clients["case_system"].get(f"/api/v1/feed?since={escaped(since)}&limit={escaped(limit)}"))


def escaped(text: str) -> str:
    """`text` percent-encoded for a URL, lone surrogates too (as the bytes no UTF-8 decoder takes)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def soap_call(values: dict) -> bytes:
    """An AcknowledgeOrder call whose elements hold whatever `values` says (as text)."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope")
    call = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body"), f"{{{NS}}}AcknowledgeOrder")
    for name, value in values.items():
        text = json.dumps(value) if not isinstance(value, str) else value
        try:
            etree.SubElement(call, f"{{{NS}}}{name}").text = text
        except ValueError:  # lxml refuses what XML cannot carry; send it as bytes below
            etree.SubElement(call, f"{{{NS}}}{name}").text = "X" * len(text)
    return etree.tostring(envelope)


@HOSTILE
@given(
    body=acknowledgements.map(soap_call)
    | bodies_beyond_json
    | texts.map(
        lambda t: f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "{t}">]><a>&x;</a>'.encode("utf-8", "surrogatepass")
    )
)
def test_soap_never_answers_a_server_fault(clients, body):
    """SOAP 1.1 sends a fault with HTTP 500 (WS-I Basic Profile R1126): the answer must then be a
    Client fault, the caller's to fix, never a Server fault or anything that is not SOAP."""
    answer = clients["provider"].post("/soap/lov", content=body, headers={"Content-Type": "text/xml"})
    if answer.status_code == 500:
        assert etree.fromstring(answer.content).findtext(".//faultcode") == "soap:Client", answer.text[:500]
    else:
        no_server_error(answer)


def test_the_named_cases_of_the_issue_are_refused_with_their_field(clients):
    """The inputs that answered 500 before, each now a 4xx naming where."""
    case_system, vendor = clients["case_system"], clients["visit_vendor"]
    order = {
        "order_id": "ORD-1",
        "version": 2**70,
        "kind": "amend",
        "case_ref": "C1",
        "effective_date": "2026-03-01",
        "person": {"personnummer": "194107086995", "name": "Testa Testsson"},
        "provider_org": ORG,
        "services": [{"code": "HT-OMS", "category": "omsorg", "hours_per_month": "10", "valid_from": "2026-03-01"}],
    }
    event = {"type": "order.issued", "tenant": TENANT, "source": "case-system", "payload": order}
    answer = case_system.post("/api/v1/events", json=event)
    assert (answer.status_code, answer.json()["where"]) == (422, "payload.version")
    order |= {"version": 2, "case_ref": "C\x001"}
    answer = case_system.post("/api/v1/events", json=event)
    assert (answer.status_code, answer.json()["where"]) == (422, "payload.case_ref")
    assert "control characters" in answer.json()["error"]
    order |= {"case_ref": "C1", "services": [order["services"][0] | {"hours_per_month": 10.5}]}
    answer = case_system.post("/api/v1/events", json=event)
    assert (answer.status_code, answer.json()["where"]) == (422, "payload.services.0.hours_per_month")
    assert "not a floating-point number" in answer.json()["error"]
    assert case_system.post("/api/v1/events", content=deep(50_000)).json()["error"] == "nested too deeply"
    assert case_system.post("/api/v1/events", content=b"[" + b"1" * 5000 + b"]").status_code == 422
    assert case_system.get("/api/v1/feed", params={"since": 2**64}).status_code == 422
    visit = {
        "visit_id": "V1",
        "version": 2**31,
        "provider_org": ORG,
        "customer_pnr": "194107086995",
        "employee_id": "E\x00",
        "confirmation": "nfc",
    }
    answer = vendor.post("/api/v1/visits", json={"visits": [visit]})
    assert answer.status_code == 202 and answer.json()["accepted"] == 0
    reason = answer.json()["rejected"][0]["reason"]
    assert "version: Input should be less than or equal to 2147483647" in reason and "employee_id: control" in reason
