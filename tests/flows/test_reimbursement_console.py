"""The reimbursement runs in the console: every role sees a run with its findings and
adjustments; only the review group approves it, with the form's CSRF token."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

import flows
from adapters.http_app import create_app
from core import users
from flows.reimbursement import run as reimbursement
from flows.reimbursement.configuration import rules_of
from flows.reimbursement.tables import runs
from schemas.money import Period
from tests.adapters.test_console import PASSWORD, ROLES, token
from tests.conftest import TENANT


def _browser(hub, name: str) -> tuple[TestClient, str]:
    app = create_app(hub)
    flows.console_pages(app.state.console)
    browser = TestClient(app, base_url="https://testserver", follow_redirects=False)
    login = browser.get("/console/login")
    browser.post("/console/login", data={"csrf": token(login.text), "name": name, "password": PASSWORD})
    return browser, token(browser.get("/console/reimbursement").text)


def test_the_review_group_approves_a_run_and_no_one_else_may(make_hub):
    hub = make_hub()
    for role in ROLES:
        users.add(hub.store, role, role, PASSWORD, by="user:admin")
    run_id = reimbursement.draft(
        hub.store, TENANT, Period.parse("2026-03"), rules_of(hub.config.tenant(TENANT)), by="user:handlaggare"
    )
    for role in ROLES:
        browser, csrf = _browser(hub, role)
        listed = browser.get("/console/reimbursement").text
        assert f'href="/console/reimbursement/{run_id}"' in listed and "awaiting approval" in listed
        page = browser.get(f"/console/reimbursement/{run_id}").text
        assert "Findings by level" in page and ("Approve" in page) == (role == "review")
        if role != "review":
            assert browser.post(f"/console/reimbursement/{run_id}/approve", data={"csrf": csrf}).status_code == 403
    browser, csrf = _browser(hub, "review")
    assert browser.post(f"/console/reimbursement/{run_id}/approve").status_code == 403  # no token
    assert browser.post(f"/console/reimbursement/{run_id}/approve", data={"csrf": csrf}).status_code == 303
    with hub.store.begin() as conn:
        assert conn.execute(select(runs.c.status, runs.c.approved_by).where(runs.c.id == run_id)).one() == (
            "approved",
            "user:review",
        )
    again = browser.post(f"/console/reimbursement/{run_id}/approve", data={"csrf": csrf})
    assert again.status_code == 422 and "approved" in again.text
    assert browser.get("/console/reimbursement/999999").status_code == 404


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
    path = f"/console/reimbursement/{quote(segment, safe='')}"
    if post:
        answer = browser.post(path + "/approve", data={"csrf": csrf or token_})
    else:
        answer = browser.get(path)
    assert answer.status_code < 500, (path, answer.status_code, answer.text[:200])
