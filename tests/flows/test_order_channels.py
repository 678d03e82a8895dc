"""The order flow end to end on the SOAP and SFTP channels, against the real things: zeep against
a live SOAP service, the hub's own SOAP service called by zeep, and an OpenSSH sshd."""

from __future__ import annotations

import os
import random

import pytest
import requests
import zeep
from lxml import etree

from adapters.http_app import create_app
from adapters.order_xml import decode_order, encode_acknowledgement
from core import deadletters, transfers
from core.config import HubConfig
from core.runtime import Hub
from flows import routes
from flows.orders.acknowledgements import pick_up_sftp_acknowledgements
from sandbox.case_system import CaseSystem
from sandbox.server import LiveServer
from sandbox.soap_provider import create_provider_app
from schemas.identity import generate_organisation_number
from schemas.orders import OrderAcknowledgement
from tests.conftest import TENANT, TOKEN, TOKEN_ENV, one_tenant, wait_for
from tests.flows.orders import first_dead_letter, issue, row, statuses
from tests.sshd import keygen

SOAP_ORG = generate_organisation_number(random.Random(11)).digits
SFTP_ORG = generate_organisation_number(random.Random(12)).digits
PROVIDER_TOKEN = "soap-provider-token"


@pytest.fixture
def soap_provider():
    app = create_provider_app()
    with LiveServer(app) as server:
        yield app, f"{server.url}/soap"


@pytest.fixture
def hub_config(soap_provider, sshd, partner_folder) -> HubConfig:
    for folder in ("in", "out"):
        (partner_folder / folder).mkdir()
    os.environ.update(
        {TOKEN_ENV: TOKEN, "CASEHUB_TEST_SOAP_TOKEN": PROVIDER_TOKEN, "CASEHUB_TEST_SFTP_KEY": str(sshd.private_key)}
    )
    return one_tenant(
        {
            "id": "soap-ab",
            "kind": "provider",
            "organisation_number": SOAP_ORG,
            "token_env": "CASEHUB_TEST_SOAP_TOKEN",
            "channel": {"type": "soap", "url": soap_provider[1], "timeout": 5},
        },
        {
            "id": "sftp-ab",
            "kind": "provider",
            "organisation_number": SFTP_ORG,
            "channel": sshd.channel("CASEHUB_TEST_SFTP_KEY", partner_folder),
        },
    )


def test_soap_delivery_and_acknowledgement_through_the_hubs_wsdl(make_hub, soap_provider):
    hub = make_hub()
    app, _ = soap_provider
    order = CaseSystem("http://unused", TOKEN, TENANT).order(SOAP_ORG, protected=True)
    order_id = order["payload"]["order_id"]
    issue(hub, order)
    wait_for(lambda: (r := row(hub, order_id)) and r.state == "delivered", what="delivery over SOAP")
    received = app.state.received[0]
    assert received.order.person.personnummer.digits == order["payload"]["person"]["personnummer"]
    body = etree.fromstring(received.raw)
    assert not [e for e in body.iter() if etree.QName(e).localname in ("address", "phone")]
    assert order["payload"]["person"]["address"]["street"].encode() not in received.raw

    with LiveServer(create_app(hub, routes(hub))) as server:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {PROVIDER_TOKEN}"
        client = zeep.Client(f"{server.url}/soap/lov?wsdl", transport=zeep.Transport(session=session, timeout=5))
        with pytest.raises(zeep.exceptions.Fault, match="version 2 is not the delivered version 1"):
            client.service.AcknowledgeOrder(order_id=order_id, version=2, status="accepted", provider_org=SOAP_ORG)
        assert row(hub, order_id).state == "delivered"
        answer = client.service.AcknowledgeOrder(
            order_id=order_id, version=1, status="rejected", reason="no staff that evening", provider_org=SOAP_ORG
        )
        assert answer.order_id == order_id
    found = row(hub, order_id)
    assert (found.state, found.reason) == ("rejected", "no staff that evening")
    wait_for(lambda: statuses(hub, order_id) == ["delivered", "rejected"])


def test_sftp_delivery_and_acknowledgement_files(make_hub, partner_folder):
    hub = make_hub()
    case_system = CaseSystem("http://unused", TOKEN, TENANT)
    order = case_system.order(SFTP_ORG)
    stranger = case_system.order(SFTP_ORG)
    order_id = order["payload"]["order_id"]
    issue(hub, order, stranger)
    written = partner_folder / "in" / f"order_{order_id}_1.xml"
    for issued in (order_id, stranger["payload"]["order_id"]):  # both, so that no upload is still under way
        wait_for(lambda: (r := row(hub, issued)) and r.state == "delivered", what="delivery over SFTP")
    assert decode_order(written.read_bytes()).order_id == order_id
    assert not list((partner_folder / "in").glob("*.part"))

    good = OrderAcknowledgement(order_id=order_id, version=1, status="accepted", provider_org=SFTP_ORG)
    wrong = OrderAcknowledgement(order_id="ORD-UNKNOWN", version=1, status="accepted", provider_org=SFTP_ORG)
    (partner_folder / "out" / f"ack_{order_id}_1.xml").write_bytes(encode_acknowledgement(good))
    (partner_folder / "out" / "ack_ORD-UNKNOWN_1.xml").write_bytes(encode_acknowledgement(wrong))
    assert pick_up_sftp_acknowledgements(hub.jobs, hub.config.tenant(TENANT)) == 1
    assert row(hub, order_id).state == "accepted"
    assert (partner_folder / "out" / "archive" / f"ack_{order_id}_1.xml").exists()
    reason = (partner_folder / "out" / "failed" / "ack_ORD-UNKNOWN_1.xml.reason.txt").read_text()
    assert "unknown order ORD-UNKNOWN" in reason
    with hub.store.begin() as conn:
        files = {(r["name"], r["outcome"], r["reason"]) for r in transfers.listing(conn, direction="in").rows}
    assert files == {(f"ack_{order_id}_1.xml", "taken", None), ("ack_ORD-UNKNOWN_1.xml", "failed", reason.strip())}


def test_a_wrong_pinned_host_key_holds_the_order_until_the_configuration_is_fixed(runtime, hub_config, partner_folder):
    """The hub's own misconfiguration (the SFTP host key it pins is not the server's) is not the
    provider's rejection: the order stays pending, IT operations sees a `misconfigured` dead letter,
    the case system hears nothing of a rejection, and after the fix a replay delivers it."""
    data = hub_config.model_dump(mode="json")
    channel = next(p for p in data["tenants"][0]["partners"] if p["id"] == "sftp-ab")["channel"]
    right_key, channel["host_key"] = channel["host_key"], keygen(partner_folder / "another_host_key")
    wrong = Hub(runtime, HubConfig.model_validate(data))
    wrong.store.migrate()
    wrong.start(worker=True)
    order = CaseSystem("http://unused", TOKEN, TENANT).order(SFTP_ORG)
    order_id = order["payload"]["order_id"]
    try:
        issue(wrong, order)
        letter = wait_for(lambda: first_dead_letter(wrong), what="the held delivery")
        assert (letter.kind, letter.step) == ("misconfigured", "orders.deliver")
        assert "is not the pinned one" in letter.reason
        with wrong.store.begin() as conn:  # what `casehub dead-letters list` shows
            listed = deadletters.listing(conn).rows
        assert [(r["id"], r["kind"]) for r in listed] == [(letter.id, "misconfigured")]
        assert row(wrong, order_id).state == "pending"
        assert statuses(wrong, order_id) == []
    finally:
        wrong.stop()
    channel["host_key"] = right_key  # IT operations fixes the configuration and restarts
    fixed = Hub(runtime, HubConfig.model_validate(data))
    fixed.start(worker=True)
    try:
        fixed.replay(letter.id, by="user:drift")
        wait_for(lambda: row(fixed, order_id).state == "delivered", what="the delivery after the fix")
        assert statuses(fixed, order_id) == ["delivered"]
        assert (partner_folder / "in" / f"order_{order_id}_1.xml").exists()
    finally:
        fixed.stop()
