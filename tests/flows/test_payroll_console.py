"""The payroll runs in the console: every role sees a run with its totals per pay code and its
file, and no recipient's personnummer or name; only the review group approves it, with the form's
CSRF token."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

import flows
from adapters.channels import installed
from adapters.http_app import create_app
from adapters.memory import MemoryChannel
from core import users
from core.transfers import transfers
from flows.payroll import run as payroll
from flows.payroll.configuration import payroll_settings
from flows.payroll.tables import runs
from sandbox.case_system import CaseSystem
from schemas.money import Period
from schemas.payroll import AssignmentDecided
from tests.adapters.test_console import PASSWORD, ROLES, token
from tests.conftest import TENANT, TOKEN, TOKEN_ENV, one_tenant, wait_for
from tests.flows.test_payroll import MUNICIPALITY, decide, file_of


@pytest.fixture
def hub_config(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return one_tenant(
        {
            "id": "lon",
            "kind": "payroll",
            "channel": {"type": "rest", "url": "http://lon.invalid", "token_env": "UNSET"},
        },
        payroll={"organisation_number": MUNICIPALITY},
    )


@pytest.fixture
def channel():
    """The payroll system's end, in memory."""
    found = MemoryChannel()
    with installed({"lon": found}):
        yield found


def _browser(hub, name: str) -> tuple[TestClient, str]:
    app = create_app(hub)
    flows.console_pages(app.state.console)
    browser = TestClient(app, base_url="https://testserver", follow_redirects=False)
    login = browser.get("/console/login")
    browser.post("/console/login", data={"csrf": token(login.text), "name": name, "password": PASSWORD})
    return browser, token(browser.get("/console/payroll").text)


def test_the_review_group_approves_a_run_and_no_one_else_may(channel, make_hub):
    hub = make_hub()
    for role in ROLES:
        users.add(hub.store, role, role, PASSWORD, by="user:admin")
    event = CaseSystem("http://unused", TOKEN, TENANT).assignment("A-1001", valid_from="2026-02-10")
    recipient = AssignmentDecided.model_validate(event["payload"]).recipient
    decide(hub, event)
    settings_ = payroll_settings(hub.config.tenant(TENANT))
    run_id = payroll.draft(hub.store, TENANT, Period.parse("2026-02"), settings_, by="user:lonehandlaggare")
    for role in ROLES:
        browser, csrf = _browser(hub, role)
        listed = browser.get("/console/payroll").text
        assert f'href="/console/payroll/{run_id}"' in listed and "awaiting approval" in listed
        page = browser.get(f"/console/payroll/{run_id}").text
        assert "Totals per pay code" in page and "6650.00" in page and "10327.86" in page
        assert ("Approve" in page) == (role == "review")
        assert recipient.personnummer.digits not in page and recipient.name not in page
        if role != "review":
            assert browser.post(f"/console/payroll/{run_id}/approve", data={"csrf": csrf}).status_code == 403
    browser, csrf = _browser(hub, "review")
    assert browser.post(f"/console/payroll/{run_id}/approve").status_code == 403  # no token
    assert browser.post(f"/console/payroll/{run_id}/approve", data={"csrf": csrf}).status_code == 303
    with hub.store.begin() as conn:
        assert conn.execute(select(runs.c.status, runs.c.approved_by).where(runs.c.id == run_id)).one() == (
            "approved",
            "user:review",
        )

    def sent() -> bool:
        with hub.store.begin() as conn:
            return conn.scalar(select(transfers.c.id).where(transfers.c.name == file_of("2026-02", run_id))) is not None

    wait_for(sent, what="the run's file delivered")
    page = browser.get(f"/console/payroll/{run_id}").text
    assert file_of("2026-02", run_id) in page and "delivered" in page and "Approve:" not in page
    again = browser.post(f"/console/payroll/{run_id}/approve", data={"csrf": csrf})
    assert again.status_code == 422 and "approved" in again.text
    assert browser.get("/console/payroll/999999").status_code == 404
    assert browser.post("/console/payroll/999999/approve", data={"csrf": csrf}).status_code == 404


@pytest.fixture
def reviewing(make_hub) -> tuple[TestClient, str]:
    """A review user's browser and CSRF token (built once: hypothesis runs the test body many times)."""
    hub = make_hub()
    for role in ROLES:
        users.add(hub.store, role, role, PASSWORD, by="user:admin")
    return _browser(hub, "review")


@pytest.mark.parametrize("runtime", ["embedded"], indirect=True)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segment=st.text(max_size=40), csrf=st.text(max_size=60), post=st.booleans())
def test_no_run_page_or_approval_however_hostile_gets_a_500(reviewing, runtime, segment, csrf, post):
    browser, token_ = reviewing
    path = f"/console/payroll/{quote(segment, safe='')}"
    if post:
        answer = browser.post(path + "/approve", data={"csrf": csrf or token_})
    else:
        answer = browser.get(path)
    assert answer.status_code < 500, (path, answer.status_code, answer.text[:200])
