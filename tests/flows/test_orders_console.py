"""The orders overdue in the console: every role sees them, the longest overdue first, and no
other order; no query value gets a 500."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

import flows
from adapters.console.console import MAX_ID, local
from adapters.http_app import create_app
from core import users
from core.store import utcnow
from flows.orders.tables import orders
from tests.adapters.test_console import PASSWORD, ROLES, token
from tests.conftest import TENANT


def _browser(hub, name: str | None) -> TestClient:
    """A browser on the console, logged in as `name` (None: anonymous)."""
    app = create_app(hub)
    flows.console_pages(app.state.console)
    browser = TestClient(app, base_url="https://testserver", follow_redirects=False)
    if name is not None:
        login = browser.get("/console/login")
        browser.post("/console/login", data={"csrf": token(login.text), "name": name, "password": PASSWORD})
    return browser


def _order(order_id: str, state: str, due: dt.datetime, reminded: dt.datetime | None = None) -> dict:
    """An order's row, delivered at version 2 to provider-a."""
    return {
        "tenant": TENANT,
        "order_id": order_id,
        "provider": "provider-a",
        "case_ref": "CASE-1",
        "kind": "amend",
        "version": 2,
        "message_id": f"m-{order_id}",
        "delivered_version": 2,
        "state": state,
        "contact_person": "Anna Andersson",
        "delivered_at": due - dt.timedelta(days=1),
        "ack_due_at": due,
        "reminded_at": reminded,
        "updated_at": utcnow(),
    }


def test_every_role_sees_the_overdue_orders_oldest_first_and_no_other(make_hub):
    hub = make_hub()
    for role in ROLES:
        users.add(hub.store, role, role, PASSWORD, by="user:admin")
    now = utcnow()
    older, newer = now - dt.timedelta(hours=30), now - dt.timedelta(hours=2)
    with hub.store.begin() as conn:
        conn.execute(
            insert(orders),
            [
                _order("O-LATER", "overdue", newer),
                _order("O-EARLIER", "overdue", older, reminded=now - dt.timedelta(hours=1)),
                _order("O-DELIVERED", "delivered", now + dt.timedelta(hours=1)),
            ],
        )
    for role in ROLES:
        browser = _browser(hub, role)
        answer = browser.get("/console/orders/overdue")
        assert answer.status_code == 200, answer.text[:200]
        page = answer.text
        assert 'href="/console/orders/overdue"' in page  # in the menu
        assert page.index("O-EARLIER") < page.index("O-LATER") and "O-DELIVERED" not in page
        assert local(older) in page and local(newer) in page and local(now - dt.timedelta(hours=1)) in page
        assert "provider-a" in page and "2 of 2" in page
        assert "Anna Andersson" not in page and "CASE-1" not in page
    browser = _browser(hub, "read")
    assert "O-EARLIER" in browser.get(f"/console/orders/overdue?tenant={TENANT}").text
    assert "O-EARLIER" not in browser.get("/console/orders/overdue?tenant=9999").text
    beyond = browser.get(f"/console/orders/overdue?offset={MAX_ID}")
    assert beyond.status_code == 200 and "0 of 2" in beyond.text
    assert browser.get(f"/console/orders/overdue?offset={MAX_ID + 1}").status_code == 422


def test_anonymous_is_sent_to_the_login_page(make_hub):
    answer = _browser(make_hub(), None).get("/console/orders/overdue")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login"


@pytest.fixture
def reading(make_hub) -> TestClient:
    """A read user's browser (built once: hypothesis runs the test body many times)."""
    hub = make_hub()
    users.add(hub.store, "read", "read", PASSWORD, by="user:admin")
    return _browser(hub, "read")


@pytest.mark.parametrize("runtime", ["embedded"], indirect=True)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offset=st.one_of(st.text(max_size=40), st.integers(min_value=-(2**80), max_value=2**80)),
    tenant=st.text(max_size=40),
)
def test_no_overdue_query_however_hostile_gets_a_500(reading, runtime, offset, tenant):
    answer = reading.get("/console/orders/overdue", params={"offset": str(offset), "tenant": tenant})
    assert answer.status_code < 500, (offset, tenant, answer.status_code, answer.text[:200])
