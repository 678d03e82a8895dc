"""The LOV order flow over the REST channel (SOAP and SFTP have their own tests), on both runtimes."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import threading
import time

import httpx
import pytest
from sqlalchemy import select

from core.config import HubConfig
from core.runtime import Hub
from core.store.tables import audit
from flows.orders.overdue import flag_overdue
from flows.orders.tables import orders
from sandbox.case_system import CaseSystem
from sandbox.rest_provider import create_rest_provider_app
from sandbox.server import LiveServer
from schemas.identity import generate_organisation_number
from tests.conftest import TENANT, TOKEN, TOKEN_ENV, one_tenant, wait_for
from tests.flows.orders import first_dead_letter, issue, row, statuses

PROVIDER_ORG = generate_organisation_number(random.Random(7)).digits
OTHER_ORG = generate_organisation_number(random.Random(8)).digits
PROVIDER_TOKEN, OUR_TOKEN = "provider-calls-hub", "hub-calls-provider"


@pytest.fixture
def provider():
    app = create_rest_provider_app(token=OUR_TOKEN)
    with LiveServer(app) as server:
        yield app, server.url


@pytest.fixture
def hub_config(provider) -> HubConfig:
    os.environ.update(
        {
            TOKEN_ENV: TOKEN,
            "CASEHUB_TEST_PROVIDER_TOKEN": PROVIDER_TOKEN,
            "CASEHUB_TEST_OUR_TOKEN": OUR_TOKEN,
            "CASEHUB_TEST_OTHER_TOKEN": "other-provider",
        }
    )
    return one_tenant(
        {
            "id": "omsorg-ab",
            "kind": "provider",
            "organisation_number": PROVIDER_ORG,
            "token_env": "CASEHUB_TEST_PROVIDER_TOKEN",
            "orders": {"ack_deadline_hours": 24},
            "channel": {
                "type": "rest",
                "url": provider[1],
                "token_env": "CASEHUB_TEST_OUR_TOKEN",
                "timeout": 5,
            },
        },
        {
            "id": "other-ab",
            "kind": "provider",
            "organisation_number": OTHER_ORG,
            "token_env": "CASEHUB_TEST_OTHER_TOKEN",
            "channel": {
                "type": "rest",
                "url": "http://127.0.0.1:9/",
                "token_env": "CASEHUB_TEST_OUR_TOKEN",
            },
        },
    )


@pytest.fixture
def hub(make_hub):
    return make_hub()


def test_an_order_reaches_its_provider_and_the_acknowledgement_comes_back(hub, provider):
    app, _ = provider
    order = CaseSystem("http://unused", TOKEN, TENANT).order(PROVIDER_ORG)
    issue(hub, order)
    wait_for(lambda: (r := row(hub, order["payload"]["order_id"])) and r.state == "delivered", what="delivery")
    method, path, raw = app.state.received[0]
    assert (method, path) == ("POST", "/orders")
    sent = json.loads(raw)
    assert sent["person"]["personnummer"] == order["payload"]["person"]["personnummer"]
    assert sent["person"]["address"]["street"].startswith("Testgatan")
    with hub.store.begin() as conn:
        transfer = conn.execute(select(audit).where(audit.c.action == "order.transfer")).one()
    assert transfer.subject == f"order:{order['payload']['order_id']}"

    from adapters.http_app import create_app
    from flows import routes

    ack = {
        "order_id": order["payload"]["order_id"],
        "version": 1,
        "status": "accepted",
        "contact_person": "Anna Kontakt",
        "provider_org": PROVIDER_ORG,
    }
    with LiveServer(create_app(hub, routes(hub))) as server:
        answer = httpx.post(
            f"{server.url}/api/v1/orders/{ack['order_id']}/acknowledgement",
            json=ack,
            headers={"Authorization": f"Bearer {PROVIDER_TOKEN}"},
        )
        assert answer.status_code == 202, answer.text
        again = httpx.post(
            f"{server.url}/api/v1/orders/{ack['order_id']}/acknowledgement",
            json=ack,
            headers={"Authorization": f"Bearer {PROVIDER_TOKEN}"},
        )
        assert again.status_code == 202 and again.json() == answer.json()
    assert row(hub, ack["order_id"]).state == "accepted"
    wait_for(lambda: statuses(hub, ack["order_id"]) == ["delivered", "accepted"])


def test_protected_identity_never_sends_an_address(hub, provider):
    app, _ = provider
    order = CaseSystem("http://unused", TOKEN, TENANT).order(PROVIDER_ORG, protected=True)
    issue(hub, order)
    wait_for(lambda: app.state.received, what="the delivery")
    raw = app.state.received[0][2]
    person = order["payload"]["person"]
    for secret in [
        person["address"]["street"],
        person["address"]["postcode"],
        person["address"]["city"],
        person["phone"],
    ]:
        assert secret.encode() not in raw
    assert json.loads(raw)["person"]["protected_identity"] is True


def test_a_provider_that_says_the_order_is_wrong_is_not_retried(hub, provider):
    app, _ = provider
    order = CaseSystem("http://unused", TOKEN, TENANT).order(PROVIDER_ORG, instructions="REJECT: no capacity")
    issue(hub, order)
    found = wait_for(lambda: (r := row(hub, order["payload"]["order_id"])) and r.state == "refused" and r)
    assert "no capacity" in found.reason and "HTTP 422" in found.reason
    letter = first_dead_letter(hub)
    assert letter.kind == "rejected" and "no capacity" in letter.reason
    assert len(app.state.received) == 1
    wait_for(lambda: statuses(hub, order["payload"]["order_id"]) == ["rejected"])


def test_a_provider_that_is_down_gets_the_order_once_when_it_is_back(hub, provider):
    app, _ = provider
    app.state.down_for = 3
    order = CaseSystem("http://unused", TOKEN, TENANT).order(PROVIDER_ORG)
    issue(hub, order)
    wait_for(lambda: (r := row(hub, order["payload"]["order_id"])) and r.state == "delivered", timeout=60)
    assert len(app.state.received) == 4  # three 503s, then the delivery
    assert len(app.state.orders) == 1


def test_versions_sent_concurrently_arrive_in_order(make_hub, provider):
    hub = make_hub(retry_max=20)  # a version waits (retried) while another is sent: 3 retries ran out under load
    app, _ = provider
    case_system = CaseSystem("http://unused", TOKEN, TENANT)
    first = case_system.order(PROVIDER_ORG)
    order_id, person = first["payload"]["order_id"], first["payload"]["person"]["personnummer"]
    amendments = [
        case_system.order(PROVIDER_ORG, order_id=order_id, version=v, kind="amend", person=person) for v in range(2, 9)
    ]
    issue(hub, first)
    threads = [threading.Thread(target=issue, args=(hub, a)) for a in reversed(amendments)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: (r := row(hub, order_id)) and r.delivered_version == 8, what="version 8 delivered")
    wait_for(lambda: len(statuses(hub, order_id)) == 8, what="a status for every version")
    delivered = [json.loads(raw)["version"] for _, _, raw in app.state.received]
    assert delivered == sorted(delivered) and delivered[-1] == 8  # never an old version after a newer one
    assert statuses(hub, order_id).count("delivered") == len(delivered)


@pytest.mark.parametrize(
    ("change", "token", "status", "reason"),
    [
        ({"order_id": "ORD-NOPE"}, PROVIDER_TOKEN, 409, "unknown order ORD-NOPE"),
        ({"version": 2}, PROVIDER_TOKEN, 409, "version 2 is not the delivered version 1"),
        ({"provider_org": OTHER_ORG}, "other-provider", 409, "is not this provider's"),
        ({}, TOKEN, 403, "a case_system partner may not call this"),
        ({"status": "rejected"}, PROVIDER_TOKEN, 422, "a rejection needs its reason"),
    ],
)
def test_wrong_acknowledgements_are_refused_and_change_nothing(hub, provider, change, token, status, reason):
    from adapters.http_app import create_app
    from flows import routes

    order = CaseSystem("http://unused", TOKEN, TENANT).order(PROVIDER_ORG)
    issue(hub, order)
    wait_for(lambda: (r := row(hub, order["payload"]["order_id"])) and r.state == "delivered")
    ack = {
        "order_id": order["payload"]["order_id"],
        "version": 1,
        "status": "accepted",
        "provider_org": PROVIDER_ORG,
    } | change
    with LiveServer(create_app(hub, routes(hub))) as server:
        answer = httpx.post(
            f"{server.url}/api/v1/orders/{ack['order_id']}/acknowledgement",
            json=ack,
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == status and reason in answer.json()["error"]
    found = row(hub, order["payload"]["order_id"])
    assert (found.state, found.acknowledged_at) == ("delivered", None)


def test_an_order_not_acknowledged_in_time_is_overdue_and_reminded(hub, provider):
    app, _ = provider
    order = CaseSystem("http://unused", TOKEN, TENANT).order(PROVIDER_ORG)
    issue(hub, order)
    order_id = order["payload"]["order_id"]
    wait_for(lambda: (r := row(hub, order_id)) and r.state == "delivered")
    assert flag_overdue(hub.jobs, hub.config.tenant(TENANT)) == 0
    delivered_at = row(hub, order_id).delivered_at
    with hub.store.begin() as conn:  # as if the deadline had passed
        conn.execute(orders.update().where(orders.c.order_id == order_id).values(ack_due_at=delivered_at))
    tenant = hub.config.tenant(TENANT)
    assert flag_overdue(hub.jobs, tenant) == 1 and flag_overdue(hub.jobs, tenant) == 0
    assert row(hub, order_id).state == "overdue"
    wait_for(lambda: len(app.state.received) == 2, what="the reminder")
    assert json.loads(app.state.received[1][2])["version"] == 1
    wait_for(lambda: "overdue" in statuses(hub, order_id))


def test_an_order_for_an_unknown_provider_is_dead_lettered(hub):
    order = CaseSystem("http://unused", TOKEN, TENANT).order("5560360793")
    issue(hub, order)
    letter = wait_for(lambda: first_dead_letter(hub))
    assert letter.reason.startswith("payload.provider_org: no provider with organisation number")


def test_a_provider_refusing_the_hubs_token_holds_the_order_without_refusing_it(hub, provider, monkeypatch):
    """The hub's own fault (its token for the provider is wrong) is not the provider's rejection of the
    order: the order waits, IT operations sees a dead letter, and a replay after the fix delivers it."""
    app, _ = provider
    monkeypatch.setenv("CASEHUB_TEST_OUR_TOKEN", "a-wrong-token")
    order = CaseSystem("http://unused", TOKEN, TENANT).order(PROVIDER_ORG)
    issue(hub, order)
    letter = wait_for(lambda: first_dead_letter(hub), what="the held delivery")
    assert letter.kind == "misconfigured" and "refuses the hub's token" in letter.reason
    held = row(hub, order["payload"]["order_id"])  # the step's work was rolled back: nothing refused
    assert held is None or held.state == "pending"
    assert "rejected" not in statuses(hub, order["payload"]["order_id"])
    monkeypatch.setenv("CASEHUB_TEST_OUR_TOKEN", OUR_TOKEN)  # IT operations fixes the secret
    hub.replay(letter.id, by="user:drift")
    wait_for(lambda: (r := row(hub, order["payload"]["order_id"])) and r.state == "delivered", what="the fix")
    assert statuses(hub, order["payload"]["order_id"]) == ["delivered"]


def test_the_first_version_a_provider_receives_goes_as_new_and_older_ones_are_superseded(hub, provider):
    """Contract, "Behaviour": a version not yet delivered may be skipped for a newer one; the first
    version the provider receives is sent as a new order, whatever its number."""
    app, _ = provider
    case_system = CaseSystem("http://unused", TOKEN, TENANT)
    first = case_system.order(PROVIDER_ORG)
    order_id, person = first["payload"]["order_id"], first["payload"]["person"]["personnummer"]
    third = case_system.order(PROVIDER_ORG, order_id=order_id, version=3, kind="amend", person=person)
    issue(hub, third)
    wait_for(lambda: (r := row(hub, order_id)) and r.delivered_version == 3, what="version 3 delivered")
    issue(hub, first)
    wait_for(lambda: statuses(hub, order_id) == ["delivered", "superseded"], what="version 1 superseded")
    [(method, path, raw)] = app.state.received
    assert (method, path) == ("POST", "/orders")
    assert (json.loads(raw)["kind"], json.loads(raw)["version"]) == ("new", 3)


def test_a_cancellation_of_an_order_the_provider_never_received_is_not_sent(hub, provider):
    app, _ = provider
    case_system = CaseSystem("http://unused", TOKEN, TENANT)
    first = case_system.order(PROVIDER_ORG)
    order_id, person = first["payload"]["order_id"], first["payload"]["person"]["personnummer"]
    cancel = case_system.order(PROVIDER_ORG, order_id=order_id, version=2, kind="cancel", person=person)
    issue(hub, cancel)
    wait_for(lambda: statuses(hub, order_id) == ["superseded"], what="the cancellation settled")
    issue(hub, first)  # the first version, arriving late, is older than the cancellation
    wait_for(lambda: statuses(hub, order_id) == ["superseded", "superseded"], what="version 1 settled")
    assert app.state.received == []
    assert row(hub, order_id).state == "withdrawn"


def test_an_overdue_order_is_reminded_once_per_interval_until_it_is_answered(hub, provider):
    app, _ = provider
    order = CaseSystem("http://unused", TOKEN, TENANT).order(PROVIDER_ORG)
    order_id = order["payload"]["order_id"]
    issue(hub, order)
    wait_for(lambda: (r := row(hub, order_id)) and r.state == "delivered")

    def an_interval_passes(column) -> None:
        with hub.store.begin() as conn:
            found = conn.execute(select(orders).where(orders.c.order_id == order_id)).one()
            conn.execute(
                orders.update()
                .where(orders.c.order_id == order_id)
                .values({column: getattr(found, column) - dt.timedelta(hours=24, seconds=1)})
            )

    an_interval_passes("ack_due_at")
    assert flag_overdue(hub.jobs, hub.config.tenant(TENANT)) == 1
    wait_for(lambda: len(app.state.received) == 2, what="the first reminder")
    assert flag_overdue(hub.jobs, hub.config.tenant(TENANT)) == 0  # not again within the interval
    an_interval_passes("reminded_at")
    assert flag_overdue(hub.jobs, hub.config.tenant(TENANT)) == 1
    wait_for(lambda: len(app.state.received) == 3, what="the second reminder")
    assert [json.loads(raw)["version"] for _, _, raw in app.state.received] == [1, 1, 1]

    from adapters.http_app import create_app
    from flows import routes

    ack = {"order_id": order_id, "version": 1, "status": "accepted", "provider_org": PROVIDER_ORG}
    with LiveServer(create_app(hub, routes(hub))) as server:
        assert (
            httpx.post(
                f"{server.url}/api/v1/orders/{order_id}/acknowledgement",
                json=ack,
                headers={"Authorization": f"Bearer {PROVIDER_TOKEN}"},
            ).status_code
            == 202
        )
    an_interval_passes("reminded_at")
    assert flag_overdue(hub.jobs, hub.config.tenant(TENANT)) == 0
    assert statuses(hub, order_id).count("overdue") == 1


def test_a_provider_that_hangs_holds_up_only_its_own_deliveries(runtime, provider, hub_config):
    """A delivery waits for its provider outside any transaction: while one provider hangs, the case
    system's events are stored, the feed is read, and another provider gets its orders."""
    from adapters.http_app import create_app
    from flows import routes

    app, _ = provider
    hanging = create_rest_provider_app(token=OUR_TOKEN)
    hanging.state.answering.clear()
    with LiveServer(hanging) as hanging_server:
        data = hub_config.model_dump(mode="json")
        next(p for p in data["tenants"][0]["partners"] if p["id"] == "other-ab")["channel"]["url"] = hanging_server.url
        hub = Hub(
            runtime.model_copy(update={"retry_max": 30, "retry_max_backoff_ms": 1000}), HubConfig.model_validate(data)
        )
        hub.store.migrate()
        hub.start(worker=True)
        case_system = CaseSystem("http://unused", TOKEN, TENANT)
        stuck = [case_system.order(OTHER_ORG) for _ in range(12)]
        try:
            try:
                issue(hub, *stuck)
                wait_for(lambda: hanging.state.received, what="the first call to hang")
                fine = [case_system.order(PROVIDER_ORG) for _ in range(5)]
                with LiveServer(create_app(hub, routes(hub))) as server:
                    headers = {"Authorization": f"Bearer {TOKEN}"}
                    for _ in range(3):
                        started = time.monotonic()
                        posted = httpx.post(f"{server.url}/api/v1/events", json=fine.pop(), headers=headers, timeout=10)
                        read = httpx.get(f"{server.url}/api/v1/feed", headers=headers, timeout=10)
                        assert (posted.status_code, read.status_code) == (202, 200)
                        assert time.monotonic() - started < 1.0
                issue(hub, *fine)
                wait_for(lambda: len(app.state.orders) == 5, timeout=10, what="the other provider's orders")
                assert len(hanging.state.received) < len(stuck)  # the breaker: not one thread per stuck order
            finally:
                hanging.state.answering.set()
            wait_for(lambda: len(hanging.state.orders) == len(stuck), timeout=60, what="the hung provider's orders")
        finally:  # whatever failed: this hub's workers must not go on taking the next tests' messages
            if not hub.bus.in_process:
                hub.bus.broker.flush_all()
            hub.stop()
