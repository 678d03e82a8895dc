"""SOAP over real HTTP: the hub's order channel (zeep) against the simulated provider, and the hub's
AcknowledgeOrder service called by two independent SOAP clients (zeep and suds)."""

from __future__ import annotations

import datetime as dt
import logging
import random
from contextlib import ExitStack

import httpx
import pytest
import requests
import suds
import suds.client
import zeep
from fastapi import FastAPI, HTTPException, Request
from lxml import etree

from adapters.order_forms import order_file_name, outgoing
from adapters.order_xml import NS
from adapters.soap.client import SoapTransport
from adapters.soap.server import SOAP_ENV, soap_router
from adapters.transport import Outgoing
from core.errors import Rejected, Transient
from sandbox.server import LiveServer, free_port
from sandbox.soap_provider import create_provider_app
from schemas.identity import generate_organisation_number, generate_personnummer
from schemas.orders import Address, Order, OrderAcknowledgement, OrderedService, Person

TOKEN = "provider-secret"
RECEIVED_AT = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def an_order(rng: random.Random, **changes) -> Order:
    values = dict(
        order_id=f"ORD-{rng.randrange(10**6)}",
        version=1,
        kind="new",
        case_ref="ÄO-2026-17",
        effective_date=dt.date(2026, 3, 1),
        person=Person(
            personnummer=generate_personnummer(rng),
            name="Testa Testsson",
            address=Address(street="Provgatan 1", postcode="123 45", city="Ekerö"),
        ),
        provider_org=generate_organisation_number(rng),
        services=[
            OrderedService(code="HT-OMS", category="omsorg", hours_per_month="12.50", valid_from=dt.date(2026, 3, 1))
        ],
    )
    return Order(**(values | changes))


@pytest.fixture
def rng() -> random.Random:
    return random.Random(2026)


@pytest.fixture
def provider():
    """Serves a simulated provider built with the given options: `app, endpoint_url = provider(...)`."""
    with ExitStack() as servers:

        def serve(**options):
            app = create_provider_app(**options)
            return app, f"{servers.enter_context(LiveServer(app)).url}/soap"

        yield serve


# --- the SOAP transport: zeep against the provider ----------------------------------------------


def deliver(channel: SoapTransport, order):
    return channel.send(outgoing(order))


def test_submit_amend_and_cancel_give_receipts_and_carry_the_canonical_values(provider, rng):
    app, url = provider()
    channel = SoapTransport(url, timeout=5)
    new = an_order(rng)
    amended = new.model_copy(update={"kind": "amend", "version": 2, "instructions": "Nyckel i tubben"})
    cancelled = new.model_copy(update={"kind": "cancel", "version": 3, "services": [], "cancel_reason": "moved"})
    for order in (new, amended, cancelled):
        receipt = deliver(channel, order)
        assert (receipt.name, receipt.transport) == (order_file_name(order), "soap")
        assert receipt.received_at.tzinfo is not None
    assert [call.order for call in app.state.received] == [new, amended, cancelled]
    operations = [etree.fromstring(call.raw).find(f"{{{SOAP_ENV}}}Body")[0].tag for call in app.state.received]
    assert operations == [f"{{{NS}}}{name}" for name in ("SubmitOrder", "AmendOrder", "CancelOrder")]
    for call in app.state.received:
        assert f">{new.person.personnummer.digits}</".encode() in call.raw
        assert f">{new.provider_org.digits}</".encode() in call.raw
        assert b"****" not in call.raw


def test_no_log_line_of_a_delivery_holds_the_persons_data(provider, rng, caplog):
    caplog.set_level(logging.DEBUG)
    _app, url = provider(down_for=1)
    order = an_order(rng)
    deliver(SoapTransport(url, timeout=5), order)
    assert "HTTP 503" in caplog.text  # the retry is logged
    assert order.person.personnummer.digits not in caplog.text and order.person.name not in caplog.text


def test_a_repeated_delivery_gets_the_same_receipt(provider, rng):
    app, url = provider()
    channel = SoapTransport(url, timeout=5)
    order = an_order(rng)
    assert deliver(channel, order) == deliver(channel, order)
    assert len(app.state.received) == 2


def test_a_rejected_order_is_rejected_with_the_reason_and_not_retried(provider, rng):
    app, url = provider()
    with pytest.raises(Rejected) as caught:
        deliver(SoapTransport(url, timeout=5), an_order(rng, instructions="please REJECT this"))
    assert caught.value.reason == "order rejected: the instructions say REJECT"
    assert app.state.calls == 1


def test_a_provider_that_is_down_is_retried_and_the_order_delivered_once(provider, rng):
    app, url = provider(down_for=2)
    order = an_order(rng)
    receipt = deliver(SoapTransport(url, timeout=5), order)
    assert receipt.name == order_file_name(order)
    assert app.state.calls == 3
    assert [call.order for call in app.state.received] == [order]


def test_a_provider_that_stays_down_is_transient(provider, rng):
    app, url = provider(down_for=100)
    with pytest.raises(Transient, match="HTTP 503"):
        deliver(SoapTransport(url, timeout=5), an_order(rng))
    assert app.state.calls > 1 and app.state.received == []


def test_nothing_listening_is_transient(rng):
    with pytest.raises(Transient, match="not reachable"):
        deliver(SoapTransport(f"http://127.0.0.1:{free_port()}/soap", timeout=2), an_order(rng))


def test_the_zeep_client_is_built_once_per_endpoint():
    first, again = SoapTransport("http://127.0.0.1:9/a"), SoapTransport("http://127.0.0.1:9/a")
    assert first._service is again._service
    assert SoapTransport("http://127.0.0.1:9/b")._service is not first._service


def test_the_provider_serves_its_wsdl_pointing_at_itself(provider):
    _app, url = provider()
    client = zeep.Client(f"{url}?wsdl")
    assert client.service._binding_options["address"] == url


# --- the hub's service: AcknowledgeOrder -------------------------------------------------------


@pytest.fixture
def hub():
    """The hub's SOAP router on a live server, with a token check and a recording on_acknowledge."""
    acknowledged: list[tuple[OrderAcknowledgement, str]] = []

    def authenticate(request: Request) -> str:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            raise HTTPException(401, "a bearer token is required")
        return "provider-1"

    def on_acknowledge(ack: OrderAcknowledgement, caller: str) -> dt.datetime:
        if ack.order_id == "UNKNOWN":
            raise Rejected("no order UNKNOWN for this provider", where="order_id")
        if ack.order_id == "CRASH":
            raise RuntimeError("database password is hunter2")
        acknowledged.append((ack, caller))
        return RECEIVED_AT

    app = FastAPI()
    app.include_router(soap_router(authenticate=authenticate, on_acknowledge=on_acknowledge, max_body_bytes=64_000))
    with LiveServer(app) as server:
        yield f"{server.url}/soap/lov", acknowledged


def zeep_client(url: str) -> zeep.Client:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    return zeep.Client(f"{url}?wsdl", transport=zeep.Transport(session=session, timeout=5, operation_timeout=5))


def suds_client(url: str) -> suds.client.Client:
    return suds.client.Client(f"{url}?wsdl", cache=None, timeout=5, headers={"Authorization": f"Bearer {TOKEN}"})


def an_acknowledgement(rng: random.Random, **changes) -> OrderAcknowledgement:
    values = dict(
        order_id="ORD-1",
        version=2,
        status="rejected",
        reason="no staff in Ekerö",
        contact_person="Prova Provberg",
        provider_org=generate_organisation_number(rng),
    )
    return OrderAcknowledgement(**(values | changes))


def arguments(ack: OrderAcknowledgement) -> dict:
    return {key: value for key, value in ack.model_dump().items() if value is not None}


def test_the_wsdl_points_at_where_it_was_fetched_and_its_schema_is_served(hub):
    url, _ = hub
    wsdl = etree.fromstring(httpx.get(f"{url}?wsdl").content)
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location")
    schema_location = wsdl.find(".//{http://www.w3.org/2001/XMLSchema}import").get("schemaLocation")
    assert address == url
    schema = httpx.get(schema_location)
    assert schema.status_code == 200 and etree.fromstring(schema.content).get("targetNamespace") == NS
    assert httpx.get(url).status_code == 404


def test_zeep_acknowledges_an_order(hub, rng):
    url, acknowledged = hub
    ack = an_acknowledgement(rng)
    result = zeep_client(url).service.AcknowledgeOrder(**arguments(ack))
    assert (result.order_id, result.received_at) == (ack.order_id, RECEIVED_AT)
    assert acknowledged == [(ack, "provider-1")]


def test_suds_acknowledges_an_order(hub, rng):
    url, acknowledged = hub
    ack = an_acknowledgement(rng, status="accepted", reason=None)
    result = suds_client(url).service.AcknowledgeOrder(**arguments(ack))
    assert result.order_id == ack.order_id
    assert dt.datetime.fromisoformat(str(result.received_at)) == RECEIVED_AT
    assert acknowledged == [(ack, "provider-1")]


def test_a_rejected_acknowledgement_is_a_client_fault_with_the_reason_in_both_clients(hub, rng):
    url, acknowledged = hub
    ack = an_acknowledgement(rng, order_id="UNKNOWN")
    with pytest.raises(zeep.exceptions.Fault) as zeep_fault:
        zeep_client(url).service.AcknowledgeOrder(**arguments(ack))
    assert zeep_fault.value.code == "soap:Client"
    assert zeep_fault.value.message == "no order UNKNOWN for this provider"
    with pytest.raises(suds.WebFault) as suds_fault:
        suds_client(url).service.AcknowledgeOrder(**arguments(ack))
    assert suds_fault.value.fault.faultcode == "soap:Client"
    assert suds_fault.value.fault.faultstring == "no order UNKNOWN for this provider"
    assert acknowledged == []


def test_a_failure_inside_the_hub_is_a_server_fault_that_tells_nothing(hub, rng):
    url, _ = hub
    with pytest.raises(zeep.exceptions.Fault) as caught:
        zeep_client(url).service.AcknowledgeOrder(**arguments(an_acknowledgement(rng, order_id="CRASH")))
    assert caught.value.code == "soap:Server"
    assert "hunter2" not in caught.value.message


def test_a_caller_without_a_token_is_refused_by_authenticate(hub, rng):
    url, acknowledged = hub
    answer = httpx.post(url, content=envelope(acknowledgement_body(rng)), headers={"Content-Type": "text/xml"})
    assert answer.status_code == 401 and acknowledged == []


def acknowledgement_body(rng: random.Random, provider_org: str | None = None) -> str:
    org = provider_org or generate_organisation_number(rng).digits
    return (
        f'<AcknowledgeOrder xmlns="{NS}"><order_id>ORD-1</order_id><version>1</version>'
        f"<status>accepted</status><provider_org>{org}</provider_org></AcknowledgeOrder>"
    )


def envelope(body: str, prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>{body}</soap:Body></soap:Envelope>'
    ).encode()


def post(url: str, body: bytes) -> tuple[int, str | None, str | None, str | None]:
    """Status, faultcode, faultstring and the detail's `where` of the answer to a raw POST."""
    answer = httpx.post(
        url,
        content=body,
        headers={"Content-Type": "text/xml; charset=utf-8", "Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert answer.headers["content-type"] == "text/xml; charset=utf-8"
    fault = etree.fromstring(answer.content).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    where = fault.findtext(f"detail/{{{NS}}}fault/{{{NS}}}where")
    return answer.status_code, fault.findtext("faultcode"), fault.findtext("faultstring"), where


def test_a_body_with_a_dtd_is_a_client_fault(hub, rng):
    url, acknowledged = hub
    doctype = '<!DOCTYPE soap:Envelope [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    body = envelope(acknowledgement_body(rng).replace("ORD-1", "&lol2;"), prolog=doctype)
    assert post(url, body)[:3] == (500, "soap:Client", "DTD and entities are not allowed")
    assert acknowledged == []


def test_an_oversized_body_is_refused_with_413(hub, rng):
    url, acknowledged = hub
    body = envelope(acknowledgement_body(rng) + " " * 70_000)
    status, code, reason, _ = post(url, body)
    assert (status, code) == (413, "soap:Client") and "over 64000 bytes" in reason
    assert acknowledged == []


def test_a_body_that_breaks_the_xsd_is_a_client_fault_naming_the_element(hub, rng):
    url, acknowledged = hub
    status, code, reason, where = post(url, envelope(acknowledgement_body(rng, provider_org="12345")))
    assert (status, code, where) == (500, "soap:Client", "line 1: provider_org") and "pattern" in reason
    assert acknowledged == []


@pytest.mark.parametrize(
    "body",
    [b"not xml at all", b"<Envelope/>", envelope(""), envelope("<Other/>")],
    ids=["not-xml", "not-soap", "empty-body", "unknown-operation"],
)
def test_a_body_that_is_not_an_acknowledgement_is_a_client_fault(hub, body):
    url, acknowledged = hub
    status, code, *_ = post(url, body)
    assert (status, code) == (500, "soap:Client") and acknowledged == []


def test_a_file_is_delivered_with_deliver_file_and_a_resend_replaces_it(provider):
    app, url = provider()
    channel = SoapTransport(url, timeout=5)
    channel.send(Outgoing("ersattning_0125_202603_1_5560360793.csv", b"period;amount\r\n2026-03;931.50\r\n"))
    channel.send(Outgoing("ersattning_0125_202603_1_5560360793.csv", b"period;amount\r\n2026-03;931.51\r\n"))
    assert app.state.files == {"ersattning_0125_202603_1_5560360793.csv": b"period;amount\r\n2026-03;931.51\r\n"}
    with pytest.raises(Rejected):
        channel.send(Outgoing("../escape.csv", b"x"))
    assert len(app.state.files) == 1
