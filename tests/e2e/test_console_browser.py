"""The console in a real browser: Playwright driving Debian's Chromium against a live hub. Each role
logs in; operations replays a dead letter and sees it processed and pauses a schedule; the review
group approves a reimbursement run; the audit log is searched; a `read` user is refused every
action and an anonymous one is sent to the login page. Every page is saved as a screenshot, on a
desktop and on a phone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import flows
from adapters.http_app import create_app
from core import users
from flows.reimbursement import run as reimbursement
from flows.reimbursement.configuration import rules_of
from sandbox.server import LiveServer
from schemas.money import Period
from tests.adapters.test_console import PASSWORD, ROLES, _open_letters, _outcome, broken, dead_letter
from tests.conftest import REQUIRE_SERVICES, TENANT, wait_for

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if REQUIRE_SERVICES:
        raise RuntimeError("chromium is not installed (apt-get install chromium); .ci/run installs it")
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)

SCREENSHOTS = Path(os.environ.get("CASEHUB_SCREENSHOTS", "var/screenshots"))
"""Where the tests save a screenshot of every page (a few are kept in docs/)."""
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def chromium():
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
        )
        yield browser
        browser.close()


@pytest.fixture
def served(make_hub):
    hub = make_hub(console_https=False)  # plain HTTP on 127.0.0.1: the cookie may not be Secure
    for role in ROLES:
        users.add(hub.store, role, role, PASSWORD, by="user:admin")
    app = create_app(hub)
    flows.console_pages(app.state.console)
    with LiveServer(app) as server:
        yield hub, server.url


def logged_in(chromium, url: str, name: str, *, viewport: dict | None = None):
    page = chromium.new_context(viewport=viewport or {"width": 1280, "height": 900}).new_page()
    page.goto(f"{url}/console/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/console/")
    return page


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("runtime", ["embedded"], indirect=True)
def test_an_anonymous_visitor_lands_on_the_login_page_and_a_wrong_password_stays_there(chromium, served, runtime):
    _hub, url = served
    page = chromium.new_page()
    page.goto(f"{url}/console/schedules")
    assert page.url == f"{url}/console/login"
    page.fill("input[name=name]", "operations")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").is_visible()
    shot(page, "login-failed")


@pytest.mark.parametrize("runtime", ["embedded"], indirect=True)
@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_every_page_on_a_desktop_and_a_phone(chromium, served, runtime, role):
    hub, url = served
    dead_letter(hub)
    reimbursement.draft(hub.store, TENANT, Period.parse("2026-03"), rules_of(hub.config.tenant(TENANT)), by="user:x")
    for device, viewport in (("desktop", None), ("phone", PHONE)):
        page = logged_in(chromium, url, role, viewport=viewport)
        for name, path in [
            ("overview", "/console/"),
            ("dead-letters", "/console/dead-letters"),
            ("transfers", "/console/transfers"),
            ("schedules", "/console/schedules"),
            ("audit", "/console/audit"),
            ("reimbursement", "/console/reimbursement"),
            ("statistics", "/console/reimbursement/statistics"),
            ("payroll", "/console/payroll"),
            ("orders-overdue", "/console/orders/overdue"),
        ]:
            answer = page.goto(url + path)
            assert answer is not None and answer.status == 200, path
            assert page.locator("h1").is_visible()
            shot(page, f"{name}-{role}-{device}")


@pytest.mark.parametrize("runtime", ["embedded"], indirect=True)
def test_operations_replays_a_dead_letter_and_sees_it_processed(chromium, served, runtime):
    hub, url = served
    letter = dead_letter(hub)
    message = _open_letters(hub)[0]["message_id"]
    page = logged_in(chromium, url, "operations")
    page.goto(f"{url}/console/dead-letters/{letter}")
    assert "19121212-****" in page.content()
    broken.clear()  # the fix
    page.goto(f"{url}/console/dead-letters")
    page.check(f"input[name=id][value='{letter}']")
    page.click("text=Replay the chosen")
    assert "sent again" in page.content()
    shot(page, "replayed")
    assert not _open_letters(hub)
    wait_for(lambda: _outcome(hub, message) == "done", what="the replayed step")


@pytest.mark.parametrize("runtime", ["embedded"], indirect=True)
def test_the_review_group_approves_a_reimbursement_run(chromium, served, runtime):
    hub, url = served
    run_id = reimbursement.draft(
        hub.store, TENANT, Period.parse("2026-03"), rules_of(hub.config.tenant(TENANT)), by="user:handlaggare"
    )
    page = logged_in(chromium, url, "review")
    page.goto(f"{url}/console/reimbursement/{run_id}")
    shot(page, "reimbursement-run")
    page.click("text=Approve")
    page.wait_for_url(f"{url}/console/reimbursement/{run_id}")
    assert "by user:review" in page.content() and "Approve:" not in page.content()


@pytest.mark.parametrize("runtime", ["embedded"], indirect=True)
def test_the_economy_group_downloads_the_months_statistics(chromium, served, runtime, tmp_path):
    from flows.visits.versions import store as store_visits
    from tests.flows.test_reimbursement_run import LOCK, MARCH, ORG, WORKED_EXAMPLE

    hub, url = served
    with hub.store.begin() as conn:  # visits of a provider with no order: every one a deviation
        store_visits(conn, tenant=TENANT, vendor="v", accepted=WORKED_EXAMPLE, rejected=[], raw=b"{}", channel="push")
    reimbursement.set_lock(hub.store, TENANT, MARCH, LOCK, by="user:x")
    reimbursement.draft(hub.store, TENANT, MARCH, rules_of(hub.config.tenant(TENANT)), by="user:x")
    page = logged_in(chromium, url, "economy")
    page.goto(f"{url}/console/reimbursement/statistics")
    assert page.locator("svg.chart").count() == 1  # the deviations; nothing ordered, so no chart of hours
    assert "Nothing ordered or performed" in page.content()
    shot(page, "statistics")
    with page.expect_download() as started:
        page.click("text=Download CSV")
    download = started.value
    assert download.suggested_filename == f"statistik_{TENANT}_2026-03.csv"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    rows = [line.split(";") for line in saved.read_text(encoding="utf-8-sig").splitlines()]
    assert rows[0][0] == "period" and len(rows) > 1
    assert all(row[0] == "2026-03" and row[1] == ORG and row[2] == "deviation" for row in rows[1:])
    assert sum(int(row[6]) for row in rows[1:]) == len(WORKED_EXAMPLE)


@pytest.mark.parametrize("runtime", ["embedded"], indirect=True)
def test_operations_pauses_a_schedule_and_searches_the_audit_log(chromium, served, runtime):
    _hub, url = served
    page = logged_in(chromium, url, "operations")
    page.goto(f"{url}/console/schedules")
    row = page.locator("tr", has_text="visits.poll").filter(has_text=TENANT)
    row.get_by_role("button", name="Pause").click()
    page.wait_for_url(f"{url}/console/schedules")
    assert (
        "paused by user:operations" in page.locator("tr", has_text="visits.poll").filter(has_text=TENANT).inner_text()
    )
    shot(page, "schedules-paused")
    page.goto(f"{url}/console/audit")
    page.fill("input[name=action]", "schedule.pause")
    page.click("text=Search")
    assert "job:visits.poll" in page.content()
    shot(page, "audit-search")


@pytest.mark.parametrize("runtime", ["embedded"], indirect=True)
def test_a_read_user_is_refused_every_action(chromium, served, runtime):
    hub, url = served
    letter = dead_letter(hub)
    page = logged_in(chromium, url, "read")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    for path, form in [
        ("/console/dead-letters/replay", {"id": str(letter)}),
        ("/console/schedules/pause", {"job": "visits.poll", "tenant": TENANT}),
        ("/console/schedules/run", {"job": "visits.poll", "tenant": TENANT}),
        ("/console/reimbursement/1/approve", {}),
        ("/console/payroll/1/approve", {}),
    ]:
        assert page.request.post(url + path, form={"csrf": csrf, **form}).status == 403, path
    assert page.goto(f"{url}/console/dead-letters/{letter}?reveal=true").status == 403
    assert _open_letters(hub)[0]["status"] == "open"
    assert _outcome(hub, _open_letters(hub)[0]["message_id"]) == "dead"
