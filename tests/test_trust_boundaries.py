"""Trust boundaries (architecture rule 11), on both runtimes: for every inbound endpoint, every
partner kind of two tenants and every document type, only the allowed cells are taken, every
other one is refused with 403 (or 409 for another provider's order), and nothing of one tenant's
reaches a partner of the other (checked on the bytes the simulated partners received)."""

from __future__ import annotations

import datetime as dt
import os
import random
import uuid

import httpx
import pytest
from lxml import etree

from adapters.http_app import create_app
from adapters.order_xml import element, xml_values
from adapters.soap.server import answer
from core import deadletters, messages
from core.config import HubConfig
from flows import routes
from flows.reimbursement import run
from flows.reimbursement.configuration import rules_of
from sandbox.case_system import CaseSystem
from sandbox.rest_provider import create_rest_provider_app
from sandbox.server import LiveServer
from schemas.documents import DOCUMENTS
from schemas.envelope import Envelope
from schemas.identity import generate_organisation_number, generate_personnummer
from schemas.money import Period
from schemas.orders import OrderAcknowledgement
from tests.conftest import wait_for
from tests.flows.orders import row

TENANTS = ("0125", "0180")
KINDS = ("case_system", "provider", "visit_vendor")
ORG = {tenant: generate_organisation_number(random.Random(int(tenant))).digits for tenant in TENANTS}
CALLERS = [(tenant, kind) for tenant in TENANTS for kind in KINDS]
OUTBOUND_TOKEN = "hub-calls-the-providers"

ALLOWED = {
    "case_system": {"case.event_recorded", "order.issued", "assignment.decided", "stay.reported"},
    "provider": {"order.acknowledged"},
    "visit_vendor": {"visit.reported"},
}
"""What each kind may send; the hub's own types (hub.receipt, order.status_changed, visit.batch,
reimbursement.basis_approved, payroll.approved, legacy.*) no partner may. Written out here, not
read from the registry, so that a change to the registry has to be made on purpose in both places."""


def token(tenant: str, kind: str) -> str:
    return f"token-{tenant}-{kind}"


@pytest.fixture
def providers():
    """One REST provider per tenant, keeping every byte the hub sends it."""
    apps = {tenant: create_rest_provider_app(token=OUTBOUND_TOKEN) for tenant in TENANTS}
    with LiveServer(apps[TENANTS[0]]) as first, LiveServer(apps[TENANTS[1]]) as second:
        yield {TENANTS[0]: (apps[TENANTS[0]], first.url), TENANTS[1]: (apps[TENANTS[1]], second.url)}


@pytest.fixture
def hub_config(providers) -> HubConfig:
    tenants = []
    for tenant in TENANTS:
        for kind in KINDS:
            os.environ[f"CASEHUB_TEST_{tenant}_{kind.upper()}"] = token(tenant, kind)
        os.environ["CASEHUB_TEST_OUTBOUND"] = OUTBOUND_TOKEN
        tenants.append(
            {
                "code": tenant,
                "name": f"kommun {tenant}",
                "partners": [
                    {"id": "case-system", "kind": "case_system", "token_env": f"CASEHUB_TEST_{tenant}_CASE_SYSTEM"},
                    {
                        "id": "provider",
                        "kind": "provider",
                        "organisation_number": ORG[tenant],
                        "token_env": f"CASEHUB_TEST_{tenant}_PROVIDER",
                        "channel": {
                            "type": "rest",
                            "url": providers[tenant][1],
                            "token_env": "CASEHUB_TEST_OUTBOUND",
                            "timeout": 5,
                        },
                    },
                    {"id": "vendor", "kind": "visit_vendor", "token_env": f"CASEHUB_TEST_{tenant}_VISIT_VENDOR"},
                ],
            }
        )
    return HubConfig.model_validate({"tenants": tenants})


def a_visit(rng: random.Random, tenant: str) -> dict:
    start = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    return {
        "visit_id": f"V-{rng.getrandbits(32)}",
        "version": 1,
        "provider_org": ORG[tenant],
        "customer_pnr": generate_personnummer(rng).digits,
        "employee_id": "E1",
        "confirmation": "nfc",
        "actual_start": start.isoformat(),
        "actual_end": (start + dt.timedelta(minutes=30)).isoformat(),
        "services": ["HT-OMS"],
        "approved": True,
    }


def payloads(case_system: CaseSystem, rng: random.Random, tenant: str) -> dict[str, dict]:
    """A valid payload of every document type, for `tenant`."""
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    return {
        "case.event_recorded": case_system.event()["payload"],
        "order.issued": case_system.order(ORG[tenant])["payload"],
        "order.acknowledged": {"order_id": "ORD-1", "version": 1, "status": "accepted", "provider_org": ORG[tenant]},
        "visit.reported": a_visit(rng, tenant),
        "hub.receipt": {"of": str(uuid.uuid4()), "step": "echo", "handled_at": now},
        "order.status_changed": {"order_id": "ORD-1", "version": 1, "status": "delivered", "at": now},
        "visit.batch": {"channel": "push", "visits": 1, "rejected": 0},
        "reimbursement.basis_approved": {"run_id": 1, "provider_org": ORG[tenant], "period": "2026-03"},
        "assignment.decided": case_system.assignment(f"A-{rng.getrandbits(16)}")["payload"],
        "stay.reported": case_system.stays("K-1", "2026-03", [2, 3])["payload"],
        "payroll.approved": {"run_id": 1, "period": "2026-03"},
        "legacy.person": {"personnummer": generate_personnummer(rng).digits, "last_name": "Testsson"},
        "legacy.case": {
            "case_number": "07-0000003",
            "personnummer": generate_personnummer(rng).digits,
            "opened": "2020-01-02",
            "area": "ÄO",
            "officer": "HANDL1",
        },
        "legacy.decision": {
            "decision_id": "D00000000001",
            "case_number": "07-0000003",
            "service_code": "HT-OMS",
            "hours_per_month": "12.50",
            "status": "granted",
        },
        "legacy.journal_note": {
            "note_id": "J00000000001",
            "case_number": "07-0000003",
            "signature": "HANDL1",
            "text": "Besök.",
            "lines": 1,
        },
    }


def soap_acknowledgement(ack: OrderAcknowledgement) -> bytes:
    return answer(element("AcknowledgeOrder", xml_values(ack))).body


def test_each_kind_sends_only_its_own_types_for_its_own_tenant_and_nothing_crosses(make_hub, providers):
    hub = make_hub()
    rng = random.Random(3)
    with LiveServer(create_app(hub, routes(hub))) as server:
        clients = {
            caller: httpx.Client(base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {token(*caller)}"})
            for caller in CALLERS
        }
        case_systems = {
            tenant: CaseSystem(server.url, token(tenant, "case_system"), tenant, seed=int(tenant)) for tenant in TENANTS
        }
        samples = {tenant: payloads(case_systems[tenant], rng, tenant) for tenant in TENANTS}
        assert set(samples[TENANTS[0]]) == set(DOCUMENTS), "a new document type needs its cells in this matrix"

        # POST /api/v1/events: every caller, every type, for its own tenant and for the other
        issued = {tenant: [] for tenant in TENANTS}
        for (tenant, kind), client in clients.items():
            for target in TENANTS:
                for type_, payload in samples[target].items():
                    envelope = {
                        "id": str(uuid.uuid4()),
                        "type": type_,
                        "tenant": target,
                        "source": kind,
                        "payload": payload,
                    }
                    answer_ = client.post("/api/v1/events", json=envelope)
                    allowed = target == tenant and type_ in ALLOWED["case_system"] and kind == "case_system"
                    assert answer_.status_code == (202 if allowed else 403), (tenant, kind, target, type_, answer_.text)
                    if allowed and type_ == "order.issued":
                        issued[tenant].append(payload)
                    if not allowed and kind == "case_system" and target == tenant:
                        assert answer_.json()["where"] == "type" and type_ in answer_.json()["error"]

        for orders in issued.values():
            for order in orders:
                wait_for(lambda: (r := row(hub, order["order_id"])) and r.state == "delivered", what="delivery")

        # the acknowledgement, over REST and SOAP: only the order's own provider
        order = issued[TENANTS[0]][0]
        ack = OrderAcknowledgement(
            order_id=order["order_id"], version=1, status="accepted", provider_org=ORG[TENANTS[0]]
        )
        for (tenant, kind), client in clients.items():
            rest = client.post(f"/api/v1/orders/{order['order_id']}/acknowledgement", content=ack.model_dump_json())
            soap = client.post("/soap/lov", content=soap_acknowledgement(ack), headers={"Content-Type": "text/xml"})
            if kind != "provider":
                assert (rest.status_code, soap.status_code) == (403, 403), (tenant, kind)
            elif tenant == TENANTS[0]:
                assert (rest.status_code, soap.status_code) == (202, 200), (rest.text, soap.text)
            else:  # another tenant's provider: that order does not exist for it
                assert rest.status_code == 409 and "unknown order" in rest.json()["error"]
                assert soap.status_code == 500  # SOAP 1.1 (WS-I BP R1126): a fault travels as 500
                assert etree.fromstring(soap.content).findtext(".//faultcode") == "soap:Client"
        assert row(hub, order["order_id"]).state == "accepted"

        # POST /api/v1/visits: visit vendors only
        for (tenant, kind), client in clients.items():
            pushed = client.post("/api/v1/visits", json={"visits": [a_visit(rng, tenant)]})
            assert pushed.status_code == (202 if kind == "visit_vendor" else 403), (tenant, kind, pushed.text)
            if kind == "visit_vendor":
                assert pushed.json() == {"accepted": 1, "rejected": []}

        # GET /api/v1/feed: case systems only, each its own tenant's events
        hub.relay.drain()
        for (tenant, kind), client in clients.items():
            feed = client.get("/api/v1/feed", params={"since": 0, "limit": 5000})
            assert feed.status_code == (200 if kind == "case_system" else 403), (tenant, kind)
            if kind == "case_system":
                events = feed.json()["events"]
                assert events and {e["tenant"] for e in events} == {tenant}
        for client in clients.values():
            client.close()

    # nothing of one tenant's reached the other's provider
    for tenant, other in (TENANTS, TENANTS[::-1]):
        app = providers[other][0]
        received = b"".join(raw for *_, raw in app.state.received) + b"".join(app.state.files.values())
        for order in issued[tenant]:
            assert order["order_id"].encode() not in received
            assert order["person"]["personnummer"].encode() not in received
    assert all(
        any(o["order_id"].encode() in raw for *_, raw in providers[t][0].state.received)
        for t in TENANTS
        for o in issued[t]
    )  # and each tenant's own orders did reach its own provider


def test_the_delivering_step_checks_the_runs_tenant_and_state(make_hub, providers):
    """Even an envelope of the hub's own type (as a bug or a replay could make one) delivers only an
    approved run of its own tenant: anything else is rejected, never retried, and nothing is sent."""
    hub = make_hub()
    a, b = TENANTS
    draft = run.draft(hub.store, a, Period(2026, 3), rules_of(hub.config.tenant(a)), by="test")
    cases = {
        b: ({"run_id": draft, "provider_org": ORG[b], "period": "2026-03"}, f"no run {draft} in tenant {b}"),
        a: ({"run_id": draft, "provider_org": ORG[a], "period": "2026-03"}, f"run {draft} is draft"),
    }
    envelopes = {
        tenant: Envelope(type="reimbursement.basis_approved", tenant=tenant, source="casehub/test", payload=payload)
        for tenant, (payload, _) in cases.items()
    }
    envelopes["missing"] = Envelope(
        type="reimbursement.basis_approved",
        tenant=a,
        source="casehub/test",
        payload={"run_id": draft + 1000, "provider_org": ORG[a], "period": "2026-03"},
    )
    with hub.store.begin() as conn:
        messages.send_many(conn, [(e, "step:reimbursement.deliver") for e in envelopes.values()])
    hub.relay.nudge()
    letters = wait_for(lambda: len(found := dead_letters_now(hub)) == 3 and found, what="three dead letters")
    reasons = {letter["message_id"]: letter["reason"] for letter in letters}
    assert cases[b][1] in reasons[envelopes[b].id] and cases[a][1] in reasons[envelopes[a].id]
    assert f"no run {draft + 1000} in tenant {a}" in reasons[envelopes["missing"].id]
    assert all(letter["kind"] == "rejected" for letter in letters)  # not retried
    assert not providers[a][0].state.files and not providers[b][0].state.files


def dead_letters_now(hub) -> list[dict]:
    with hub.store.begin() as conn:
        return deadletters.listing(conn).rows
