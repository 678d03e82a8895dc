"""The payroll flow end to end: assignments and stays in as case events, the run, approval, and
the PAXml file on the payroll system's SFTP server (a real sshd), parsed back. The worked example of
specs/fees-and-payroll-rules.md (section B), line by line."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from adapters.channels import installed
from adapters.memory import MemoryChannel
from adapters.paxml import check_paxml, read_paxml
from core import retention
from core.errors import Rejected
from core.store import utcnow
from core.store.tables import audit, messages, processed
from core.transfers import transfers
from flows.payroll import run
from flows.payroll.configuration import payroll_settings
from flows.payroll.tables import runs
from sandbox.case_system import CaseSystem
from schemas.identity import generate_organisation_number
from schemas.money import Period
from tests.conftest import TENANT, TOKEN, TOKEN_ENV, one_tenant, wait_for
from tests.flows.orders import issue

MUNICIPALITY = generate_organisation_number(random.Random(41)).digits
D = Decimal


@pytest.fixture
def hub_config(sshd, partner_folder, monkeypatch):
    for folder in ("in", "out"):
        (partner_folder / folder).mkdir()
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("CASEHUB_TEST_SFTP_KEY", str(sshd.private_key))
    return one_tenant(
        {"id": "lon", "kind": "payroll", "channel": sshd.channel("CASEHUB_TEST_SFTP_KEY", partner_folder)},
        payroll={"organisation_number": MUNICIPALITY},
    )


@pytest.fixture
def case_system():
    return CaseSystem("http://unused", TOKEN, TENANT)


def decide(hub, *events) -> None:
    """Events in through the hub's intake, and wait until the payroll flow has handled them."""
    issue(hub, *events)
    ids = {event["id"] for event in events}
    wait_for(lambda: handled(hub, "payroll.store", ids) == len(ids), what="the events handled")


def handled(hub, step: str, message_ids) -> int:
    """How many of the messages `step` is done with."""
    with hub.store.begin() as conn:
        return int(conn.scalar(select(func.count()).where(processed.c.step == step, processed.c.key.in_(message_ids))))


def pay(hub, period: str, folder=None) -> int:
    """Draft and approve the period's run; with `folder`, wait for its file there."""
    settings = payroll_settings(hub.config.tenant(TENANT))
    run_id = run.draft(hub.store, TENANT, Period.parse(period), settings, by="user:lonehandlaggare")
    run.approve(hub.store, run_id, by="user:granskare")
    hub.relay.nudge()
    if folder is not None:
        wait_for(lambda: (folder / "in" / file_of(period, run_id)).exists(), what=f"the file of {period}")
    return run_id


def file_of(period: str, run_id: int) -> str:
    return f"fees_{TENANT}_{period.replace('-', '')}_{run_id}.pax"


def lines_of(data: bytes) -> list[tuple]:
    _header, found = read_paxml(data)
    return [
        (
            line.pay_code,
            line.text,
            line.date_from.isoformat(),
            line.date_to.isoformat(),
            line.quantity,
            line.unit_price,
            line.amount,
        )
        for line in found
    ]


def test_the_worked_example_line_by_line(make_hub, case_system, partner_folder):
    hub = make_hub()
    foster = case_system.assignment("A-1001", valid_from="2026-02-10", arvode="9800.00", omkostnad="5420.00")
    contact = case_system.assignment(
        "K-2002", kind="contact_family", valid_from="2026-01-01", arvode="350.00", omkostnad="250.00"
    )
    decide(hub, foster, contact)

    february = pay(hub, "2026-02", partner_folder)
    data = (partner_folder / "in" / file_of("2026-02", february)).read_bytes()
    assert lines_of(data) == [
        ("3101", "Arvode familjehem A-1001", "2026-02-10", "2026-02-28", D("19.00"), D("9800.00"), D("6650.00")),
        ("3102", "Omkostnad familjehem A-1001", "2026-02-10", "2026-02-28", D("19.00"), D("5420.00"), D("3677.86")),
    ]

    decide(hub, case_system.stays("K-2002", "2026-03", [6, 7, 8, 20, 21, 22]))
    march = pay(hub, "2026-03", partner_folder)
    data = (partner_folder / "in" / file_of("2026-03", march)).read_bytes()
    assert sorted(lines_of(data)) == sorted(
        [
            ("3101", "Arvode familjehem A-1001", "2026-03-01", "2026-03-31", D("31.00"), D("9800.00"), D("9800.00")),
            ("3102", "Omkostnad familjehem A-1001", "2026-03-01", "2026-03-31", D("31.00"), D("5420.00"), D("5420.00")),
            ("3111", "Arvode kontaktfamilj K-2002", "2026-03-01", "2026-03-31", D("6.00"), D("350.00"), D("2100.00")),
            (
                "3112",
                "Omkostnad kontaktfamilj K-2002",
                "2026-03-01",
                "2026-03-31",
                D("6.00"),
                D("250.00"),
                D("1500.00"),
            ),
        ]
    )

    raised = case_system.assignment(
        "A-1001", version=2, valid_from="2026-03-01", arvode="10400.00", omkostnad="5420.00"
    )
    decide(hub, raised)
    april = pay(hub, "2026-04", partner_folder)
    data = (partner_folder / "in" / file_of("2026-04", april)).read_bytes()
    assert lines_of(data) == [
        ("3101", "Arvode familjehem A-1001", "2026-04-01", "2026-04-30", D("30.00"), D("10400.00"), D("10400.00")),
        (
            "3101",
            "Rättelse 2026-03 Arvode familjehem A-1001",
            "2026-03-01",
            "2026-03-31",
            D("0.00"),
            D("10400.00"),
            D("600.00"),
        ),
        ("3102", "Omkostnad familjehem A-1001", "2026-04-01", "2026-04-30", D("30.00"), D("5420.00"), D("5420.00")),
    ]
    header, _ = read_paxml(data)
    assert header.organisation_number == MUNICIPALITY
    for payload in (foster, contact, raised):  # the child, in any form, is in no file
        child = payload["payload"]["child"]
        for period, run_id in (("2026-02", february), ("2026-03", march), ("2026-04", april)):
            written = (partner_folder / "in" / file_of(period, run_id)).read_bytes()
            assert child.encode() not in written and child[2:].encode() not in written
            assert f"{child[2:8]}-{child[8:]}".encode() not in written

    def recorded():
        with hub.store.begin() as conn:
            return conn.execute(select(transfers).where(transfers.c.name == file_of("2026-04", april))).first()

    sent = wait_for(recorded, what="the transfer recorded")  # committed just after the file is in place
    with hub.store.begin() as conn:
        assert conn.scalar(select(func.count()).select_from(audit).where(audit.c.action == "payroll.transfer")) == 3
    assert (sent.partner, sent.sha256) == ("lon", hashlib.sha256(data).hexdigest())
    assert not list((partner_folder / "in").glob("*.part"))


def test_a_resend_delivers_the_same_bytes_after_the_approval_is_purged(make_hub, case_system, partner_folder):
    """The file is written from the run's lines, which the message purge leaves: a run is resent
    long after the message that approved it is gone."""
    hub = make_hub()
    decide(hub, case_system.assignment("A-7", valid_from="2026-03-03"))
    run_id = pay(hub, "2026-03", partner_folder)
    written = partner_folder / "in" / file_of("2026-03", run_id)
    first = written.read_bytes()
    written.unlink()
    with hub.store.begin() as conn:
        approval = conn.scalar(select(runs.c.approval).where(runs.c.id == run_id))
    wait_for(lambda: handled(hub, "payroll.deliver", [approval]), what="the delivery step done with the approval")
    later = utcnow() + dt.timedelta(days=100)
    assert retention.purge(hub.store, hub.config.tenant(TENANT), by="test", now=later)["messages"] >= 1
    with hub.store.begin() as conn:
        assert conn.scalar(select(func.count()).where(messages.c.id == approval)) == 0
    run.resend(hub.store, TENANT, run_id, by="user:drift")
    hub.relay.nudge()
    wait_for(written.exists, what="the file again")
    assert written.read_bytes() == first
    with written.open("rb") as file:
        assert check_paxml(file) == 2


@pytest.fixture
def payroll():
    channel = MemoryChannel()
    with installed({"lon": channel}):
        yield channel


def delivered(channel: MemoryChannel, period: str, run_id: int) -> list[tuple]:
    name = file_of(period, run_id)
    wait_for(lambda: any(item.name == name for item in channel.sent), what=f"the file of {period}")
    return lines_of(next(item.body() for item in channel.sent if item.name == name))


def test_a_later_stay_report_replaces_the_earlier_and_corrects_what_was_paid(payroll, make_hub, case_system):
    hub = make_hub()
    decide(
        hub,
        case_system.assignment(
            "K-1", kind="contact_family", valid_from="2026-01-01", arvode="350.00", omkostnad="250.00"
        ),
    )
    decide(hub, case_system.stays("K-1", "2026-03", [6, 7, 8]))
    march = pay(hub, "2026-03")
    assert [line[4] for line in delivered(payroll, "2026-03", march)] == [D("3.00"), D("3.00")]
    decide(hub, case_system.stays("K-1", "2026-03", [6, 7], version=2))
    april = pay(hub, "2026-04")
    assert delivered(payroll, "2026-04", april) == [
        (
            "3111",
            "Rättelse 2026-03 Arvode kontaktfamilj K-1",
            "2026-03-01",
            "2026-03-31",
            D("-1.00"),
            D("350.00"),
            D("-350.00"),
        ),
        (
            "3112",
            "Rättelse 2026-03 Omkostnad kontaktfamilj K-1",
            "2026-03-01",
            "2026-03-31",
            D("-1.00"),
            D("250.00"),
            D("-250.00"),
        ),
    ]


def test_a_version_that_ends_earlier_is_a_negative_delta_and_a_raise_reaches_back_two_periods(
    payroll, make_hub, case_system
):
    hub = make_hub()
    decide(hub, case_system.assignment("A-1", valid_from="2026-01-01"), case_system.assignment("A-2"))
    pay(hub, "2026-03")
    pay(hub, "2026-04")
    ended = case_system.assignment("A-1", version=2, valid_from="2026-01-01", valid_to="2026-04-15")
    raised = case_system.assignment("A-2", version=2, valid_from="2026-03-01", arvode="10000.00")
    decide(hub, ended, raised)
    may = pay(hub, "2026-05")
    found = delivered(payroll, "2026-05", may)
    assert [line for line in found if "A-1" in line[1]] == [
        (
            "3101",
            "Rättelse 2026-04 Arvode familjehem A-1",
            "2026-04-01",
            "2026-04-30",
            D("-15.00"),
            D("9800.00"),
            D("-4900.00"),
        ),
        (
            "3102",
            "Rättelse 2026-04 Omkostnad familjehem A-1",
            "2026-04-01",
            "2026-04-30",
            D("-15.00"),
            D("5420.00"),
            D("-2710.00"),
        ),
    ]
    assert [line[1:] for line in found if "A-2" in line[1] and line[0] == "3101"] == [
        ("Arvode familjehem A-2", "2026-05-01", "2026-05-31", D("31.00"), D("10000.00"), D("10000.00")),
        ("Rättelse 2026-03 Arvode familjehem A-2", "2026-03-01", "2026-03-31", D("0.00"), D("10000.00"), D("200.00")),
        ("Rättelse 2026-04 Arvode familjehem A-2", "2026-04-01", "2026-04-30", D("0.00"), D("10000.00"), D("200.00")),
    ]


def test_the_same_event_twice_is_paid_once_and_a_paid_period_is_not_paid_again(payroll, make_hub, case_system):
    hub = make_hub()
    event = case_system.assignment("A-1")
    decide(hub, event)
    decide(hub, event)  # the same event again
    resent = {**event, "id": "b1a7b1a7-0000-4000-8000-000000000001"}  # the same version under another id
    decide(hub, resent)
    march = pay(hub, "2026-03")
    assert [line[6] for line in delivered(payroll, "2026-03", march)] == [D("9800.00"), D("5420.00")]
    with pytest.raises(Rejected, match="2026-03 is paid"):
        run.draft(hub.store, TENANT, Period(2026, 3), payroll_settings(hub.config.tenant(TENANT)), by="user:x")
    with pytest.raises(Rejected, match="only a draft is approved"):
        run.approve(hub.store, march, by="user:x")
    with hub.store.begin() as conn:  # a draft made before March was paid, approved after it
        late = conn.execute(
            runs.insert()
            .values(tenant=TENANT, period="2026-03", status="draft", created_at=utcnow(), created_by="user:y")
            .returning(runs.c.id)
        ).scalar_one()
    with pytest.raises(Rejected, match="2026-03 is paid"):
        run.approve(hub.store, late, by="user:x")
    april = pay(hub, "2026-04")
    assert not [line for line in delivered(payroll, "2026-04", april) if line[1].startswith("Rättelse")]


def test_a_version_changed_after_it_was_decided_is_refused(payroll, make_hub, case_system):
    hub = make_hub()
    decide(hub, case_system.assignment("A-1"))
    decide(hub, case_system.assignment("A-1", arvode="99999.00"))
    assert "version 1 of assignment A-1 is already stored with another arvode" in _dead_letters(hub)[0]


def _dead_letters(hub) -> list[str]:
    from core.store.tables import dead_letters

    with hub.store.begin() as conn:
        return list(conn.scalars(select(dead_letters.c.reason)))


def _bad(case_system: CaseSystem, change) -> dict:
    event = case_system.assignment("A-9") if change[0] == "assignment" else case_system.stays("K-9", "2026-03", [2])
    change[1](event["payload"])
    return event


@pytest.mark.parametrize(
    "change, where, reason",
    [
        (("assignment", lambda p: p.update(valid_to="2026-02-01")), "payload.valid_to", "is before valid_from"),
        (("assignment", lambda p: p.update(kind="uncle")), "payload.kind", "Input should be"),
        (
            ("assignment", lambda p: p["components"]["arvode"].update(amount="9800.005")),
            "payload.components.arvode.amount",
            "no more than 2 decimal places",
        ),
        (("stays", lambda p: p.update(dates=["2026-04-01"])), "payload.dates", "outside the period 2026-03"),
    ],
)
def test_bad_input_is_refused_naming_its_field_and_nothing_is_stored(payroll, make_hub, change, where, reason):
    from adapters.http_app import create_app
    from core.store.tables import messages
    from sandbox.server import LiveServer

    hub = make_hub()
    with LiveServer(create_app(hub)) as server:
        case_system = CaseSystem(server.url, TOKEN, TENANT)
        answer = case_system.post(_bad(case_system, change))
        case_system.close()
    assert answer.status_code == 422, answer.text
    assert answer.json()["where"] == where and reason in answer.json()["error"]
    with hub.store.begin() as conn:
        assert conn.scalar(select(func.count()).select_from(messages)) == 0
