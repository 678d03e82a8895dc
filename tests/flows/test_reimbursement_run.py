"""The monthly run over stored visits and orders: the spec's worked example end to end, review,
adjustments, approval, the basis delivered to the provider, and a correction run after approval."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import random
import re
import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from adapters.basis_files import basis_json
from core.config import HubConfig
from core.errors import Rejected
from core.store import utcnow
from core.store.tables import audit
from core.transfers import transfers
from flows.reimbursement import run as reimbursement
from flows.reimbursement.queries import basis
from flows.reimbursement.tables import findings, lines, runs
from flows.visits.versions import store as store_visits
from sandbox.case_system import CaseSystem
from sandbox.rest_provider import create_rest_provider_app
from sandbox.server import LiveServer
from schemas.identity import generate_organisation_number, generate_personnummer
from schemas.money import Period
from schemas.reimbursement import Rules
from schemas.visits import Visit
from tests.conftest import TENANT, TOKEN, TOKEN_ENV, wait_for
from tests.flows.orders import issue, row

ORG = generate_organisation_number(random.Random(31)).digits
PERSON = generate_personnummer(random.Random(32)).digits
MARCH = Period(2026, 3)
CET = dt.timezone(dt.timedelta(hours=1))
LOCK = dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)
READER = "user:granskningsgrupp"


@pytest.fixture
def provider():
    app = create_rest_provider_app(token="out")
    with LiveServer(app) as server:
        yield app, server.url


@pytest.fixture
def hub_config(provider) -> HubConfig:
    os.environ.update({TOKEN_ENV: TOKEN, "CASEHUB_TEST_OUT": "out"})
    return HubConfig.model_validate(
        {
            "tenants": [
                {
                    "code": TENANT,
                    "name": "Ekerö kommun",
                    "personal_data_readers": [READER],
                    "partners": [
                        {"id": "case-system", "kind": "case_system", "token_env": TOKEN_ENV},
                        {
                            "id": "omsorg-ab",
                            "kind": "provider",
                            "organisation_number": ORG,
                            "channel": {"type": "rest", "url": provider[1], "token_env": "CASEHUB_TEST_OUT"},
                        },
                    ],
                }
            ]
        }
    )


def visit(
    number: int, start: str, end: str, services: list[str], version: int = 1, customer: str = PERSON, **flags
) -> Visit:
    return Visit(
        visit_id=f"V-{number}",
        version=version,
        provider_org=ORG,
        customer_pnr=customer,
        employee_id="E1",
        actual_start=dt.datetime.fromisoformat(start).replace(tzinfo=CET),
        actual_end=dt.datetime.fromisoformat(end).replace(tzinfo=CET),
        confirmation="nfc",
        services=services,
        approved=True,
        edit_reason="corrected end" if version > 1 else None,
        **flags,
    )


WORKED_EXAMPLE = [
    visit(1, "2026-03-02T08:04:12", "2026-03-02T08:31:40", ["HT-OMS"]),
    visit(2, "2026-03-02T19:10:00", "2026-03-02T19:32:00", ["HT-OMS", "HT-SERV"]),
    visit(3, "2026-03-07T10:00:00", "2026-03-07T10:20:00", ["HT-OMS"], double_staffing=True),
    visit(4, "2026-03-03T09:00:00", "2026-03-03T09:30:00", ["HT-OMS"], declined=True),
]


@pytest.fixture
def hub(make_hub):
    hub = make_hub()
    order = CaseSystem("http://unused", TOKEN, TENANT).order(
        ORG, person=PERSON, double_staffing=True, service_hours="8.00"
    )
    issue(hub, order)
    wait_for(lambda: (r := row(hub, order["payload"]["order_id"])) and r.state == "delivered")
    with hub.store.begin() as conn:
        store_visits(
            conn, tenant=TENANT, vendor="vendor", accepted=WORKED_EXAMPLE, rejected=[], raw=b"{}", channel="push"
        )
    # the visits are stored today, long after March's default lock date: the review group moves it
    reimbursement.set_lock(hub.store, TENANT, MARCH, LOCK, by="user:granskningsgrupp")
    return hub


def run_lines(hub, run_id: int) -> dict[tuple, tuple[int, Decimal]]:
    with hub.store.begin() as conn:
        return {
            (r.category, r.band, r.rate): (r.minutes + r.adjusted_minutes, r.amount)
            for r in conn.execute(select(lines).where(lines.c.run_id == run_id))
        }


def test_the_worked_example_end_to_end(hub):
    run_id = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by="user:granskare")
    assert run_lines(hub, run_id) == {
        ("omsorg", "day", Decimal("420.00")): (27, Decimal("189.00")),
        ("omsorg", "evening", Decimal("495.00")): (90, Decimal("742.50")),
    }
    with hub.store.begin() as conn:
        found = [(f.visit_id, f.code) for f in conn.execute(select(findings).where(findings.c.run_id == run_id))]
        run = conn.execute(select(runs).where(runs.c.id == run_id)).one()
    assert found == [("V-4", "declined")]
    assert (run.visits, run.paid, run.status) == (4, 3, "draft")
    assert run.lock_at == LOCK


def test_a_draft_computed_again_is_the_same_and_keeps_its_adjustments(hub):
    first = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by="user:a")
    key = (ORG, PERSON, "omsorg", "day", Decimal("420.00"))
    reimbursement.adjust(hub.store, first, key, 13, by="user:a", why="visit on paper, confirmed by phone")
    assert run_lines(hub, first)[("omsorg", "day", Decimal("420.00"))] == (40, Decimal("280.00"))
    with pytest.raises(Rejected, match="reason"):
        reimbursement.adjust(hub.store, first, key, 5, by="user:a", why=" ")
    second = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by="user:b")
    assert run_lines(hub, second)[("omsorg", "day", Decimal("420.00"))] == (40, Decimal("280.00"))
    with hub.store.begin() as conn:
        assert list(conn.scalars(select(runs.c.id))) == [second]  # the new draft replaced the old one
        entry = conn.execute(select(audit).where(audit.c.action == "reimbursement.adjust")).one()
    assert "confirmed by phone" in entry.detail and entry.actor == "user:a"


def test_approval_freezes_the_run_and_sends_the_provider_its_basis(hub, provider):
    app, _ = provider
    run_id = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by="user:a")
    totals = reimbursement.approve(hub.store, run_id, by="user:granskningsgrupp")
    assert totals == {ORG: Decimal("931.50")}
    with pytest.raises(Rejected, match="approved run never changes"):
        reimbursement.adjust(
            hub.store, run_id, (ORG, PERSON, "omsorg", "day", Decimal("420.00")), 1, by="user:a", why="late"
        )
    with pytest.raises(Rejected):
        reimbursement.approve(hub.store, run_id, by="user:a")
    hub.relay.nudge()
    wait_for(lambda: len(app.state.files) == 2, what="the basis files")
    name = f"ersattning_{TENANT}_202603_{run_id}_{ORG}"
    rows = list(csv.DictReader(io.StringIO(app.state.files[f"{name}.csv"].decode()), delimiter=";"))
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal("931.50")
    assert {r["provider_org"] for r in rows} == {ORG}
    assert b"931.50" in app.state.files[f"{name}.html"]
    with hub.store.begin() as conn:
        sent = conn.execute(select(transfers).where(transfers.c.name.like("ersattning_%"))).all()
    assert {t.name for t in sent} == {f"{name}.csv", f"{name}.html"}
    assert {t.sha256 for t in sent} == {hashlib.sha256(data).hexdigest() for data in app.state.files.values()}
    assert {t.size for t in sent} == {len(data) for data in app.state.files.values()}


def test_a_change_after_approval_is_paid_by_a_correction_run_of_differences(hub):
    approved = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by="user:a")
    reimbursement.approve(hub.store, approved, by="user:a")
    edited = visit(1, "2026-03-02T08:04:12", "2026-03-02T08:46:40", ["HT-OMS"], version=2)  # 42 minutes, not 27
    with hub.store.begin() as conn:
        store_visits(conn, tenant=TENANT, vendor="vendor", accepted=[edited], rejected=[], raw=b"{}", channel="push")
    correction = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by="user:a")
    assert run_lines(hub, correction) == {("omsorg", "day", Decimal("420.00")): (15, Decimal("105.00"))}
    assert run_lines(hub, approved)[("omsorg", "day", Decimal("420.00"))] == (27, Decimal("189.00"))
    with hub.store.begin() as conn:
        assert conn.scalar(select(runs.c.kind).where(runs.c.id == correction)) == "correction"


def basis_files(app, run_id: int) -> tuple[list[dict], bytes]:
    name = f"ersattning_{TENANT}_202603_{run_id}_{ORG}"
    return (
        list(csv.DictReader(io.StringIO(app.state.files[f"{name}.csv"].decode()), delimiter=";")),
        app.state.files[f"{name}.html"],
    )


def test_what_came_after_the_lock_is_paid_by_the_correction_run_and_delivered(hub, provider):
    """Spec section 5: the lock decides which run pays a version, not whether it is paid. A late new
    visit is paid by the correction, a late edit that shortens a paid visit takes back the difference."""
    app, _ = provider
    reimbursement.set_lock(hub.store, TENANT, MARCH, utcnow(), by=READER)
    time.sleep(0.01)
    late = [
        visit(5, "2026-03-04T20:00:00", "2026-03-04T20:30:00", ["HT-OMS"]),  # evening, 30 min: 247.50
        visit(1, "2026-03-02T08:04:12", "2026-03-02T08:16:40", ["HT-OMS"], version=2),
    ]  # 27 -> 12 min
    with hub.store.begin() as conn:
        store_visits(conn, tenant=TENANT, vendor="vendor", accepted=late, rejected=[], raw=b"{}", channel="push")
    regular = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by=READER)
    with hub.store.begin() as conn:
        codes = {f.visit_id: f.code for f in conn.execute(select(findings).where(findings.c.run_id == regular))}
    assert codes["V-5"] == "after_lock"
    assert reimbursement.approve(hub.store, regular, by=READER) == {ORG: Decimal("931.50")}  # v1 of V-1 counted

    correction = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by=READER)
    assert run_lines(hub, correction) == {
        ("omsorg", "day", Decimal("420.00")): (-15, Decimal("-105.00")),
        ("omsorg", "evening", Decimal("495.00")): (30, Decimal("247.50")),
    }
    with hub.store.begin() as conn:
        run = conn.execute(select(runs).where(runs.c.id == correction)).one()
        assert not conn.execute(
            select(findings).where(findings.c.run_id == correction, findings.c.code == "after_lock")
        ).first()
    assert run.kind == "correction" and run.lock_at == run.created_at  # everything received before it started
    assert reimbursement.approve(hub.store, correction, by=READER) == {ORG: Decimal("142.50")}
    hub.relay.nudge()
    wait_for(lambda: len(app.state.files) == 4, what="both runs' files")
    sent, report = basis_files(app, correction)
    assert sorted((r["band"], r["minutes"], r["amount"]) for r in sent) == [
        ("day", "-15", "-105.00"),
        ("evening", "30", "247.50"),
    ]
    assert "rättelse".encode() in report
    again = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by=READER)
    assert run_lines(hub, again) == {}  # a second correction: nothing more to pay


def test_approved_adjustments_stand_in_a_correction(hub):
    approved = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by=READER)
    reimbursement.adjust(
        hub.store, approved, (ORG, PERSON, "omsorg", "day", Decimal("420.00")), 13, by=READER, why="visit on paper"
    )
    reimbursement.approve(hub.store, approved, by=READER)
    edited = visit(1, "2026-03-02T08:04:12", "2026-03-02T08:46:40", ["HT-OMS"], version=2)  # 27 -> 42 minutes
    with hub.store.begin() as conn:
        store_visits(conn, tenant=TENANT, vendor="vendor", accepted=[edited], rejected=[], raw=b"{}", channel="push")
    correction = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by=READER)
    # (42 + 13) min x 420.00 / 60 = 385.00, of which (27 + 13) x 7 = 280.00 was paid: 105.00 more, not 14.00
    assert run_lines(hub, correction) == {("omsorg", "day", Decimal("420.00")): (15, Decimal("105.00"))}


def test_money_is_exact_in_the_store_itself(hub):
    """A raw read (no SQLAlchemy type in between) of every money column, and a sum done in SQL."""
    run_id = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by=READER)
    reimbursement.adjust(
        hub.store, run_id, (ORG, PERSON, "omsorg", "day", Decimal("420.00")), 1, by=READER, why="one minute"
    )  # 28 min x 7.00 = 196.00
    with hub.store.begin() as conn:
        raw = conn.exec_driver_sql("SELECT rate, amount FROM reimbursement_lines ORDER BY rate").all()
        total = conn.exec_driver_sql("SELECT sum(amount) FROM reimbursement_lines").scalar()
        adjusted = conn.exec_driver_sql("SELECT rate FROM reimbursement_adjustments").scalar()
    assert raw == [(42000, 19600), (49500, 74250)] and all(type(v) is int for row in raw for v in row)
    assert (total, adjusted) == (93850, 42000)  # öre: 938.50 SEK


def test_the_basis_as_json_is_what_the_provider_received(hub, provider):
    app, _ = provider
    run_id = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by=READER)
    reimbursement.approve(hub.store, run_id, by=READER)
    hub.relay.nudge()
    wait_for(lambda: len(app.state.files) == 2, what="the basis files")
    found = basis(hub.store, hub.config, run_id, by=READER, reveal=True)
    shown = json.loads(basis_json(found.run, found.totals, found.lines))
    sent, _report = basis_files(app, run_id)
    assert [line | {"period": "2026-03"} for line in shown["lines"]] == [
        {key: int(value) if key in ("minutes", "adjusted_minutes") else value for key, value in row.items()}
        for row in sent
    ]
    assert shown["totals"] == [{"provider_org": ORG, "lines": 2, "minutes": 117, "amount": "931.50"}]
    assert shown["run"]["lock_at"] == "2099-01-01T01:00:00+01:00"  # local time
    masked = basis(hub.store, hub.config, run_id, by="user:someone")
    assert {line["customer"] for line in masked.lines} == {f"{PERSON[:8]}-****"}
    with pytest.raises(Rejected, match="may not see personnummer in full"):
        basis(hub.store, hub.config, run_id, by="user:someone", reveal=True)
    with hub.store.begin() as conn:
        reads = conn.execute(select(audit.c.actor, audit.c.detail).where(audit.c.action == "reimbursement.read")).all()
    assert reads == [(READER, "lines, personnummer in full"), ("user:someone", "lines, personnummer masked")]


def test_the_review_group_moves_the_lock_date(hub):
    late = visit(5, "2026-03-04T08:00:00", "2026-03-04T08:30:00", ["HT-OMS"])
    with hub.store.begin() as conn:
        store_visits(conn, tenant=TENANT, vendor="vendor", accepted=[late], rejected=[], raw=b"{}", channel="push")
    early = dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc)
    with pytest.raises(Rejected, match="after the period"):
        reimbursement.set_lock(hub.store, TENANT, MARCH, dt.datetime(2026, 3, 20, tzinfo=dt.timezone.utc), by="u")
    reimbursement.set_lock(hub.store, TENANT, MARCH, early, by="user:granskningsgrupp")
    run_id = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by="user:a")
    with hub.store.begin() as conn:
        codes = {f.visit_id: f.code for f in conn.execute(select(findings).where(findings.c.run_id == run_id))}
        assert conn.scalar(select(runs.c.lock_at).where(runs.c.id == run_id)) == early
    assert codes["V-5"] == "after_lock"  # stored today, after the lock the group set


def test_an_edit_that_moves_a_visit_counts_once_where_its_counted_version_is(hub):
    """An edit can move a visit to another customer or into another month; a version received
    after the lock moves nothing in this run."""
    other = generate_personnummer(random.Random(33)).digits  # no order: a visit of theirs is not paid

    def store(*versions):
        with hub.store.begin() as conn:
            store_visits(
                conn, tenant=TENANT, vendor="vendor", accepted=list(versions), rejected=[], raw=b"{}", channel="push"
            )

    store(
        visit(7, "2026-03-05T10:00:00", "2026-03-05T10:30:00", ["HT-OMS"], customer=other),
        visit(7, "2026-03-05T10:00:00", "2026-03-05T10:30:00", ["HT-OMS"], version=2),  # the right customer
        visit(8, "2026-03-31T10:00:00", "2026-03-31T10:30:00", ["HT-OMS"]),
        visit(8, "2026-04-02T10:00:00", "2026-04-02T10:30:00", ["HT-OMS"], version=2),  # in April, not March
        visit(9, "2026-03-06T10:00:00", "2026-03-06T10:30:00", ["HT-OMS"], customer=other),
    )
    time.sleep(0.01)
    reimbursement.set_lock(hub.store, TENANT, MARCH, utcnow(), by="user:granskningsgrupp")
    time.sleep(0.01)
    store(visit(9, "2026-03-06T10:00:00", "2026-03-06T10:30:00", ["HT-OMS"], version=2))  # after the lock
    run_id = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by="user:a")
    with hub.store.begin() as conn:
        found = sorted(
            (f.visit_id, f.customer, f.code) for f in conn.execute(select(findings).where(findings.c.run_id == run_id))
        )
        run = conn.execute(select(runs).where(runs.c.id == run_id)).one()
    assert found == [("V-4", PERSON, "declined"), ("V-9", other, "no_order")]
    assert (run.visits, run.paid) == (6, 4)  # the worked example's four, V-7 and V-9, each once
    assert run_lines(hub, run_id)[("omsorg", "day", Decimal("420.00"))] == (27 + 30, Decimal("399.00"))


def test_a_cancellation_without_services_pays_what_was_granted_until_the_day_before(hub):
    person = generate_personnummer(random.Random(34)).digits
    case_system = CaseSystem("http://unused", TOKEN, TENANT)
    order_id = "ORD-CANCELLED"
    granted = case_system.order(ORG, person=person, order_id=order_id, service_hours="8.00")
    cancel = case_system.order(ORG, person=person, order_id=order_id, version=2, kind="cancel")
    cancel["payload"]["effective_date"] = "2026-03-15"
    assert cancel["payload"]["services"] == []
    issue(hub, granted)
    wait_for(lambda: (r := row(hub, order_id)) and r.state == "delivered")
    issue(hub, cancel)
    wait_for(lambda: row(hub, order_id).delivered_version == 2)
    with hub.store.begin() as conn:
        store_visits(
            conn,
            tenant=TENANT,
            vendor="vendor",
            rejected=[],
            raw=b"{}",
            channel="push",
            accepted=[
                visit(21, "2026-03-14T10:00:00", "2026-03-14T10:30:00", ["HT-OMS"], customer=person),
                visit(22, "2026-03-15T10:00:00", "2026-03-15T10:30:00", ["HT-OMS"], customer=person),
            ],
        )
    run_id = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by="user:a")
    with hub.store.begin() as conn:
        found = {
            f.visit_id: f.code
            for f in conn.execute(select(findings).where(findings.c.run_id == run_id, findings.c.customer == person))
        }
    assert found == {"V-22": "outside_order_period"}  # V-21, the day before, is paid


def test_a_run_split_between_processes_is_the_same_run(make_hub, hub_config):
    """On PostgreSQL the providers may be split between processes: the result does not change."""
    hub = make_hub()
    if not hub.store.is_postgresql:
        pytest.skip("the split is for PostgreSQL; SQLite has one writer")
    rng = random.Random(41)
    made = []
    for number in range(3):  # three providers, none with an order: every visit is a finding
        org = generate_organisation_number(rng).digits
        made += [
            Visit(
                visit_id=f"S-{number}-{n}",
                version=1,
                provider_org=org,
                customer_pnr=generate_personnummer(rng).digits,
                employee_id="E1",
                actual_start=dt.datetime(2026, 3, 2 + n, 9, tzinfo=CET),
                actual_end=dt.datetime(2026, 3, 2 + n, 9, 40, tzinfo=CET),
                confirmation="nfc",
                services=["HT-OMS"],
                approved=True,
            )
            for n in range(5)
        ]
    with hub.store.begin() as conn:
        store_visits(
            conn, tenant=TENANT, vendor="vendor", accepted=WORKED_EXAMPLE + made, rejected=[], raw=b"{}", channel="push"
        )
    reimbursement.set_lock(hub.store, TENANT, MARCH, LOCK, by="user:a")

    def outcome(run_id):
        with hub.store.begin() as conn:
            found = sorted(
                (f.visit_id, f.code) for f in conn.execute(select(findings).where(findings.c.run_id == run_id))
            )
            run = conn.execute(select(runs).where(runs.c.id == run_id)).one()
        return found, run_lines(hub, run_id), (run.visits, run.paid, run.status)

    serial = outcome(reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by="user:a"))
    split = outcome(reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by="user:a", processes=2))
    assert split == serial
    assert len(serial[0]) == 19 and serial[2] == (19, 0, "draft")  # no order at all: 18 no_order, 1 declined


def test_the_months_statistics_ordered_against_performed_and_deviations_drawn_and_as_csv(hub):
    from core import users
    from tests.adapters.test_console import PASSWORD
    from tests.flows.test_reimbursement_console import _browser

    run_id = reimbursement.draft(hub.store, TENANT, MARCH, Rules(), by="user:granskare")
    users.add(hub.store, "read", "read", PASSWORD, by="user:admin")
    browser, _ = _browser(hub, "read")
    page = browser.get("/console/reimbursement/statistics")
    assert page.status_code == 200 and page.text.count("<svg") == 2
    assert "the draft run would pay" in page.text and "declined" in page.text
    cells = re.sub(r">\s+<", "><", page.text)
    assert f'<td>{ORG}</td><td>omsorg</td><td class="number">20.0</td><td class="number">1.9</td>' in cells
    download = browser.get("/console/reimbursement/statistics.csv", params={"tenant": TENANT, "period": "2026-03"})
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert f'filename="statistik_{TENANT}_2026-03.csv"' in download.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:6] == ["period", "provider_org", "what", "kind", "ordered_hours", "performed_hours"]
    assert rows[1:] == [  # 27 + 90 minutes of care; the order's 20 h of care and 8 h of service
        ["2026-03", ORG, "hours", "omsorg", "20,00", "1,95", "", ""],
        ["2026-03", ORG, "hours", "service", "8,00", "0,00", "", ""],
        ["2026-03", ORG, "deviation", "declined", "", "", "1", "0"],
    ]
    reimbursement.approve(hub.store, run_id, by="user:granskningsgrupp")
    assert "the approved runs paid" in browser.get("/console/reimbursement/statistics").text
    assert browser.get("/console/reimbursement/statistics.csv", params={"period": "2026-04"}).status_code == 404
    for hostile in ({"period": "2026-13"}, {"tenant": "12345"}, {"period": "x" * 300}):
        assert browser.get("/console/reimbursement/statistics", params=hostile).status_code == 422
