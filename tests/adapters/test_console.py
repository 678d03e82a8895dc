"""The operations console: login and roles, CSRF on every form, signed sessions, masked personal
data with an audited reveal, replaying a dead letter and running the schedules; no input gets a 500."""

from __future__ import annotations

import random
import re

import pytest
from fastapi.responses import Response
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from adapters.console.session import COOKIE, Sessions
from adapters.http_app import create_app
from core import deadletters, users
from core.audit import person_key
from core.consumer import StepContext
from core.errors import Rejected
from core.scheduler import listing
from core.steps import step
from core.store.tables import audit, audit_persons, firings, processed
from schemas.envelope import Envelope
from schemas.identity import generate_personnummer
from tests.conftest import TENANT, wait_for

PASSWORD = "a long enough password"
ROLES = ("operations", "review", "economy", "read")
PNR = "19121212-1212"
broken: set[str] = set()


@step("test.console", consumes=["test.console"])
def fails_until_fixed(ctx: StepContext) -> None:
    if ctx.envelope.id in broken:
        raise Rejected(f"the customer {PNR} is unknown", where="payload.person")


@pytest.fixture
def console(make_hub):
    hub = make_hub()
    for role in ROLES:
        users.add(hub.store, role, role, PASSWORD, by="user:admin")
    return hub


def client(hub) -> TestClient:
    return TestClient(create_app(hub), base_url="https://testserver", follow_redirects=False)


def token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found[1]


def logged_in(hub, name: str) -> tuple[TestClient, str]:
    """A client with `name`'s session, and the session's CSRF token."""
    browser = client(hub)
    login = browser.get("/console/login")
    answer = browser.post("/console/login", data={"csrf": token(login.text), "name": name, "password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    return browser, token(browser.get("/console/").text)


def dead_letter(hub) -> int:
    envelope = Envelope(type="test.console", tenant=TENANT, source="test", payload={"person": PNR})
    broken.add(envelope.id)
    hub.accept([(envelope, None)], channel="test")
    letters = wait_for(lambda: _open_letters(hub), what="a dead letter")
    return letters[0]["id"]


def _open_letters(hub) -> list[dict]:
    with hub.store.begin() as conn:
        return [row for row in deadletters.listing(conn).rows if row["step"] == "test.console"]


def test_an_anonymous_visitor_is_sent_to_the_login_page(console):
    browser = client(console)
    for path in ("/console/", "/console/dead-letters", "/console/dead-letters/1", "/console/schedules"):
        answer = browser.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
    assert browser.post("/console/schedules/pause", data={"job": "visits.poll"}).status_code == 303


def test_a_login_needs_the_forms_token_and_the_right_password_and_is_audited(console):
    browser = client(console)
    page = browser.get("/console/login")
    assert page.status_code == 200 and "<form" in page.text
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie and "Path=/console" in cookie
    refused = browser.post("/console/login", data={"name": "read", "password": PASSWORD})
    assert refused.status_code == 403
    wrong = browser.post("/console/login", data={"csrf": token(page.text), "name": "read", "password": "wrong one"})
    assert wrong.status_code == 401 and "wrong" in wrong.text
    with console.store.begin() as conn:
        actions = [row.action for row in conn.execute(select(audit).where(audit.c.actor == "user:read"))]
    assert actions == ["login.failed"]
    logged_in(console, "read")
    with console.store.begin() as conn:
        assert conn.scalar(select(audit.c.action).where(audit.c.action == "login")) == "login"


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_every_page(console, role):
    browser, _ = logged_in(console, role)
    for path, words in [
        ("/console/", "waiting in the outbox"),
        ("/console/dead-letters", "Dead letters"),
        ("/console/schedules", "visits.poll"),
        ("/console/transfers", "Transfers"),
        ("/console/audit", "Audit log"),
        ("/console/retention", "message days: 90"),
        ("/console/retention?plan=1", "a purge would take now"),
    ]:
        page = browser.get(path)
        assert page.status_code == 200 and words in page.text, path
        assert "cdn" not in page.text.lower() and "http://" not in page.text and "https://" not in page.text
    assert browser.get("/console/static/console.css").status_code == 200


def test_a_read_user_is_refused_every_action(console):
    letter = dead_letter(console)
    browser, csrf = logged_in(console, "read")
    assert browser.post("/console/dead-letters/replay", data={"csrf": csrf, "id": str(letter)}).status_code == 403
    for action in ("pause", "resume", "run"):
        answer = browser.post(
            f"/console/schedules/{action}", data={"csrf": csrf, "job": "visits.poll", "tenant": TENANT}
        )
        assert answer.status_code == 403, action
    assert browser.get(f"/console/dead-letters/{letter}?reveal=true").status_code == 403
    assert "Replay" not in browser.get(f"/console/dead-letters/{letter}").text
    assert _open_letters(console)[0]["status"] == "open"


def test_a_form_without_its_token_or_with_another_sessions_is_refused(console):
    letter = dead_letter(console)
    browser, csrf = logged_in(console, "operations")
    _, other = logged_in(console, "operations")
    assert browser.post("/console/dead-letters/replay", data={"id": str(letter)}).status_code == 403
    assert browser.post("/console/dead-letters/replay", data={"csrf": other, "id": str(letter)}).status_code == 403
    assert _open_letters(console)[0]["status"] == "open"
    for strange in ("é" * 43, "\x00", csrf + "ö"):  # compared as bytes: any text is a wrong token, not a 500
        assert browser.post("/console/dead-letters/replay", data={"csrf": strange, "id": "1"}).status_code == 403


def test_a_session_cookie_signed_with_another_secret_is_no_session(console):
    signed = Response()
    Sessions("another secret of at least thirty-two chars", https=True).write(signed, Sessions.new("operations"))
    forged = client(console)
    forged.cookies.set(COOKIE, signed.headers["set-cookie"].split(";")[0].split("=", 1)[1], path="/console")
    page = forged.get("/console/")
    assert page.status_code == 303 and page.headers["location"] == "/console/login"
    genuine, _ = logged_in(console, "operations")
    assert genuine.get("/console/").status_code == 200  # the same request with this hub's own signature


def test_a_disabled_users_session_ends(console):
    browser, _ = logged_in(console, "economy")
    users.disable(console.store, "economy", by="user:admin")
    assert browser.get("/console/").status_code == 303


def test_operations_replays_a_dead_letter_and_sees_it_processed(console):
    letter = dead_letter(console)
    browser, csrf = logged_in(console, "operations")
    listed = browser.get("/console/dead-letters").text
    assert f'value="{letter}"' in listed and PNR not in listed and "19121212-****" in listed
    broken.clear()  # the fix
    answer = browser.post("/console/dead-letters/replay", data={"csrf": csrf, "id": [str(letter), "999999", "x"]})
    assert answer.status_code == 200 and "sent again" in answer.text and "999999" in answer.text
    message = _letter(console, letter)["message_id"]
    wait_for(lambda: _outcome(console, message) == "done", what="the replayed step")
    assert _letter(console, letter)["status"] == "replayed"


def test_personal_data_is_masked_until_revealed_and_the_reveal_is_audited(console):
    letter = dead_letter(console)
    browser, _ = logged_in(console, "operations")
    masked = browser.get(f"/console/dead-letters/{letter}").text
    assert PNR not in masked and "19121212-****" in masked
    with console.store.begin() as conn:
        assert conn.scalar(select(audit.c.id).where(audit.c.action == "dead_letter.show")) is None
    revealed = browser.get(f"/console/dead-letters/{letter}?reveal=true").text
    assert PNR in revealed and "audit log" in revealed
    with console.store.begin() as conn:
        entry = conn.execute(select(audit).where(audit.c.action == "dead_letter.show")).one()
    assert entry.actor == "user:operations"


def test_operations_pauses_resumes_and_runs_a_schedule(console):
    browser, csrf = logged_in(console, "operations")
    form = {"csrf": csrf, "job": "orders.overdue", "tenant": TENANT}
    assert browser.post("/console/schedules/pause", data=form).status_code == 303
    (state,) = [s for s in listing(console.store, console.config) if (s.job, s.tenant) == ("orders.overdue", TENANT)]
    assert state.paused_by == "user:operations"
    assert "paused by user:operations" in browser.get("/console/schedules").text
    assert browser.post("/console/schedules/run", data=form).status_code == 303
    assert browser.post("/console/schedules/resume", data=form).status_code == 303
    (state,) = [s for s in listing(console.store, console.config) if (s.job, s.tenant) == ("orders.overdue", TENANT)]
    assert state.paused_by is None and state.last.fired_by == "user:operations" and state.last.outcome == "ok"
    with console.store.begin() as conn:
        assert conn.scalar(select(firings.c.fired_by).where(firings.c.job == "orders.overdue")) == "user:operations"
    unknown = browser.post("/console/schedules/pause", data=form | {"job": "no.such"})
    assert unknown.status_code == 422 and "no job" in unknown.text


@pytest.mark.parametrize("runtime", ["embedded"], indirect=True)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(
        [
            "/console/login",
            "/console/logout",
            "/console/dead-letters/replay",
            "/console/schedules/pause",
            "/console/schedules/run",
            "/console/schedules/x%00y",
            "/console/audit/person",
        ]
    ),
    fields=st.dictionaries(
        st.sampled_from(["csrf", "name", "password", "id", "job", "tenant", "person", "offset"]),
        st.text(max_size=300),
        max_size=8,
    ),
    raw=st.binary(max_size=300),
    as_raw=st.booleans(),
)
def test_no_form_however_hostile_gets_a_500(console, runtime, path, fields, raw, as_raw):
    browser, csrf = logged_in(console, "operations") if "name" not in fields else (client(console), "")
    if as_raw:
        answer = browser.post(path, content=raw, headers={"content-type": "application/x-www-form-urlencoded"})
    else:  # with a session, the right token when the drawn one is empty, else whatever was drawn
        answer = browser.post(path, data=fields | ({"csrf": csrf} if csrf and not fields.get("csrf") else {}))
    assert answer.status_code < 500, (path, answer.status_code, answer.text[:200])
    for hostile in (
        "/console/dead-letters/-1",
        "/console/dead-letters/99999999999999999999",
        "/console/dead-letters?offset=-5",
    ):
        assert browser.get(hostile).status_code < 500


def _letter(hub, letter_id: int) -> dict:
    with hub.store.begin() as conn:
        return deadletters.show(conn, letter_id)


def _outcome(hub, envelope_id: str) -> str | None:
    with hub.store.begin() as conn:
        return conn.scalar(
            select(processed.c.outcome).where(processed.c.step == "test.console", processed.c.key == envelope_id)
        )


def test_the_transfers_page_lists_each_file_delivered_with_its_checksum(console):
    import datetime as dt

    from core.transfers import Receipt, record

    with console.store.begin() as conn:
        for n in range(3):
            receipt = Receipt(f"file-{n}.xml", 100 + n, f"{n:064x}", "sftp", dt.datetime.now(dt.timezone.utc))
            record(conn, tenant=TENANT, partner="omsorg-ab", receipt=receipt, cause=None)
    browser, _ = logged_in(console, "read")
    page = browser.get("/console/transfers").text
    assert all(f"file-{n}.xml" in page and f"{n:064x}"[:16] in page for n in range(3))
    assert "3 of 3" in page and "omsorg-ab" in page


def test_the_audit_log_is_searched_by_user_action_and_subject_and_the_search_is_logged(console):
    letter = dead_letter(console)
    browser, _ = logged_in(console, "operations")
    browser.get(f"/console/dead-letters/{letter}?reveal=true")
    page = browser.get("/console/audit", params={"actor": "user:operations", "action": "dead_letter.show"}).text
    assert "dead_letter.show" in page and "login.failed" not in page and "1 of 1" in page
    assert "user:read" not in browser.get("/console/audit", params={"actor": "user:operations"}).text
    with console.store.begin() as conn:
        searched = conn.execute(select(audit).where(audit.c.action == "audit.read")).all()
    details = [row.detail for row in searched]
    assert details == ["actor user:operations, action dead_letter.show", "actor user:operations"]
    assert all(row.actor == "user:operations" for row in searched)
    assert browser.get("/console/audit", params={"subject": "x" * 500}).status_code == 422


def test_the_audit_log_is_searched_by_person_in_any_form_and_holds_no_personnummer(console):
    letter = dead_letter(console)
    browser, csrf = logged_in(console, "operations")
    browser.get(f"/console/dead-letters/{letter}?reveal=true")
    reader, reader_csrf = logged_in(console, "read")
    for form in ("191212121212", "121212-1212", PNR):
        page = reader.post("/console/audit/person", data={"csrf": reader_csrf, "person": form})
        assert page.status_code == 200 and "dead_letter.show" in page.text and "user:operations" in page.text, form
    stranger = str(generate_personnummer(random.Random(7)).digits)
    other = reader.post("/console/audit/person", data={"csrf": reader_csrf, "person": stranger}).text
    assert "dead_letter.show" not in other and "0 of 0" in other
    bad = reader.post("/console/audit/person", data={"csrf": reader_csrf, "person": "19121212-1213"})
    assert bad.status_code == 422 and "check digit" in bad.text
    assert reader.post("/console/audit/person", data={"person": PNR}).status_code == 403
    with console.store.begin() as conn:
        log = [dict(row._mapping) for row in conn.execute(select(audit).order_by(audit.c.id))]
        persons = [row.person for row in conn.execute(select(audit_persons))]
    searches = [row for row in log if row["action"] == "audit.read"]
    assert len(searches) == 4 and all(row["actor"] == "user:read" and row["detail"] == "a person" for row in searches)
    assert person_key(PNR) in persons and all(len(key) == 64 for key in persons)
    digits = "191212121212"
    assert not any(digits[2:] in str(value) for row in log for value in row.values())
    assert not any(digits[2:] in key for key in persons)
