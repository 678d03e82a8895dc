"""Visit reporting on its three channels: push, poll and daily files over SFTP (a real sshd)."""

from __future__ import annotations

import hashlib
import json
import os
import random

import httpx
import pytest
from sqlalchemy import func, select

import flows.visits.files as visit_files
import flows.visits.versions as visit_versions
from adapters.http_app import create_app
from adapters.rest import VisitVendorApi
from adapters.visit_codecs import encode_visit
from core import transfers
from core.config import HubConfig, RestChannel, SftpChannel
from core.errors import Transient
from core.store.tables import dead_letters
from flows import routes
from flows.visits.channels import vendors
from flows.visits.files import pick_up_files
from flows.visits.poll import poll
from flows.visits.queries import status
from flows.visits.tables import visits
from sandbox.server import LiveServer
from sandbox.visit_vendor import create_vendor_api, drop_daily_file, month_of_visits, push
from schemas.identity import generate_organisation_number, generate_personnummer
from schemas.money import Period
from tests.conftest import TENANT, TOKEN, TOKEN_ENV, one_tenant

RNG = random.Random(21)
PROVIDER = generate_organisation_number(RNG).digits
CUSTOMERS = [(PROVIDER, generate_personnummer(RNG).digits, ["HT-OMS", "HT-SERV"]) for _ in range(5)]
MARCH = Period(2026, 3)
PUSH_TOKEN, POLL_TOKEN = "vendor-pushes", "hub-polls"


@pytest.fixture
def vendor_api():
    app = create_vendor_api(
        month_of_visits(random.Random(1), MARCH, CUSTOMERS, prefix="P", per_customer=50), token=POLL_TOKEN
    )
    with LiveServer(app) as server:
        yield app, server.url


@pytest.fixture
def hub_config(vendor_api, sshd, partner_folder) -> HubConfig:
    (partner_folder / "out").mkdir()
    os.environ.update(
        {
            TOKEN_ENV: TOKEN,
            "CASEHUB_TEST_PUSH": PUSH_TOKEN,
            "CASEHUB_TEST_POLL": POLL_TOKEN,
            "CASEHUB_TEST_SFTP_KEY": str(sshd.private_key),
        }
    )
    return one_tenant(
        {"id": "pusher", "kind": "visit_vendor", "token_env": "CASEHUB_TEST_PUSH"},
        {
            "id": "poller",
            "kind": "visit_vendor",
            "channel": {
                "type": "rest",
                "url": vendor_api[1],
                "token_env": "CASEHUB_TEST_POLL",
                "timeout": 5,
            },
        },
        {
            "id": "filer",
            "kind": "visit_vendor",
            "channel": sshd.channel("CASEHUB_TEST_SFTP_KEY", partner_folder),
        },
    )


def stored(hub, vendor: str | None = None) -> int:
    with hub.store.begin() as conn:
        query = select(func.count()).select_from(visits)
        return conn.scalar(query.where(visits.c.vendor == vendor) if vendor else query)


def letters(hub) -> list[str]:
    with hub.store.begin() as conn:
        return list(conn.scalars(select(dead_letters.c.reason).order_by(dead_letters.c.id)))


@pytest.fixture
def served(make_hub):
    hub = make_hub()
    with LiveServer(create_app(hub, routes(hub))) as server:
        yield hub, server.url


def test_pushed_visits_are_stored_before_the_answer_and_a_replay_changes_nothing(served):
    hub, url = served
    month = month_of_visits(random.Random(2), MARCH, CUSTOMERS, prefix="U", per_customer=30)
    answers = push(url, PUSH_TOKEN, month, batch=100)
    assert sum(a["accepted"] for a in answers) == len(month) == stored(hub, "pusher")
    push(url, PUSH_TOKEN, month[:100], batch=100)
    assert stored(hub, "pusher") == len(month)


def test_bad_visits_are_rejected_one_by_one_and_the_rest_stored(served):
    hub, url = served
    good = [
        encode_visit(v) for v in month_of_visits(random.Random(3), MARCH, CUSTOMERS[:1], prefix="B", per_customer=3)
    ]
    bad = [
        good[0] | {"visit_id": "BAD-1", "customer_pnr": "194107086996"},
        good[0] | {"visit_id": "BAD-2", "version": "three"},
        good[0] | {"visit_id": "BAD-3", "actual_end": "2026-03-01T00:00:00+01:00"},
        good[0] | {"visit_id": "BAD-4", "provider_org": "5560360790"},
    ]
    answer = httpx.post(
        f"{url}/api/v1/visits", json={"visits": good + bad}, headers={"Authorization": f"Bearer {PUSH_TOKEN}"}
    )
    assert answer.status_code == 202
    body = answer.json()
    assert body["accepted"] == 3
    reasons = {r["visit_id"]: r["reason"] for r in body["rejected"]}
    assert set(reasons) == {"BAD-1", "BAD-2", "BAD-3", "BAD-4"}
    assert "customer_pnr" in reasons["BAD-1"] and "6996" not in answer.text
    assert reasons["BAD-3"].startswith("actual_end") or "before" in reasons["BAD-3"]
    assert stored(hub) == 3
    (letter,) = letters(hub)  # one request, one dead letter holding every reason
    assert letter.startswith("4 visits of pusher rejected") and all(f"visit {v}:" in letter for v in reasons)


def test_a_changed_visit_sent_again_with_the_same_version_is_a_conflict(served):
    hub, url = served
    first, other = [
        encode_visit(v) for v in month_of_visits(random.Random(5), MARCH, CUSTOMERS[:1], prefix="C", per_customer=2)
    ]

    def send(*items):
        return httpx.post(
            f"{url}/api/v1/visits", json={"visits": list(items)}, headers={"Authorization": f"Bearer {PUSH_TOKEN}"}
        ).json()

    assert send(first) == {"accepted": 1, "rejected": []}
    assert send(first, other) == {"accepted": 2, "rejected": []}  # a repeat is harmless
    changed = first | {"employee_id": "E-OTHER"}
    answer = send(changed, other)
    assert answer["accepted"] == 1
    (conflict,) = answer["rejected"]
    assert conflict["visit_id"] == first["visit_id"] and "conflict" in conflict["reason"]
    assert "visits[0]" in conflict["reason"] and "higher version" in conflict["reason"]
    with hub.store.begin() as conn:
        employee = conn.scalar(select(visits.c.employee_id).where(visits.c.visit_id == first["visit_id"]))
    assert employee == first["employee_id"] and stored(hub) == 2
    assert any("conflict" in letter for letter in letters(hub))


@pytest.mark.parametrize(
    ("body", "token", "status"),
    [
        (b"{not json", PUSH_TOKEN, 422),
        (json.dumps({"visits": [{}] * 5000}).encode(), PUSH_TOKEN, 422),  # over 1 000 visits
        (b'{"visits": [' + b'{"visit_id": "x"},' * 70_000 + b"{}]}", PUSH_TOKEN, 413),  # over 1 MiB
        (json.dumps({"visits": "many"}).encode(), PUSH_TOKEN, 422),
        (b'{"visits": []}', "wrong", 401),
        (b'{"visits": []}', TOKEN, 403),
    ],
)
def test_bad_requests_are_4xx_and_store_nothing(served, body, token, status):
    hub, url = served
    answer = httpx.post(f"{url}/api/v1/visits", content=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == status, answer.text
    assert stored(hub) == 0


def test_the_poll_cursor_neither_skips_nor_repeats_across_a_crash(make_hub, vendor_api, monkeypatch):
    hub = make_hub()
    app, _ = vendor_api
    ((tenant, vendor),) = vendors(hub.config, RestChannel)
    original = app.state.visits

    class Crash(Exception):
        pass

    pages = []
    real_page = VisitVendorApi.page

    def crashing_page(self, since, limit):  # the hub dies after storing the first page
        if len(pages) == 1:
            raise Crash()
        pages.append(since)
        return real_page(self, since, limit)

    monkeypatch.setattr(VisitVendorApi, "page", crashing_page)
    with pytest.raises(Crash):
        poll(hub.jobs, tenant, vendor, page_size=50)
    monkeypatch.undo()
    first_page = stored(hub, "poller")
    assert 0 < first_page < len(original)
    app.state.fail_next = 1
    with pytest.raises(Transient):
        poll(hub.jobs, tenant, vendor, page_size=50)
    assert poll(hub.jobs, tenant, vendor, page_size=50) == len(original) - first_page
    assert stored(hub, "poller") == len(original)
    asked = [c for c in app.state.requests if c]
    assert len(asked) == len(set(asked)) + 1  # the page that failed was asked again, no other page twice
    assert poll(hub.jobs, tenant, vendor, page_size=50) == 0


def test_daily_files_with_a_broken_row_and_an_unreadable_file(make_hub, partner_folder):
    hub = make_hub()
    ((tenant, vendor),) = vendors(hub.config, SftpChannel)
    out = partner_folder / "out"
    day = month_of_visits(random.Random(4), MARCH, CUSTOMERS[:2], prefix="F", per_customer=10)
    good = drop_daily_file(out, "filer", MARCH.first_day, day)
    lines = good.read_text().splitlines()
    lines[3] = lines[3].replace(CUSTOMERS[0][1], "194107086996").replace(CUSTOMERS[1][1], "194107086996")
    good.write_text("\n".join(lines) + "\n")
    unreadable = out / "visits_filer_20260302_1.csv"
    unreadable.write_bytes(b"\xff\xfe\x00not csv at all")
    (out / "visits_filer_20260302_1.csv.done").write_bytes(b"")
    (out / "visits_filer_20260303_1.csv").write_bytes(good.read_bytes())  # no done-file yet: not taken

    assert pick_up_files(hub.jobs, tenant, vendor) == (1, 1)
    assert stored(hub, "filer") == len(day) - 1
    assert any("line 4" in reason for reason in letters(hub))
    assert (out / "archive" / good.name).exists()
    assert (out / "failed" / "visits_filer_20260302_1.csv.reason.txt").read_text().strip()
    assert (out / "visits_filer_20260303_1.csv").exists()
    with hub.store.begin() as conn:  # both files, as fetched, in the transfers IT operations see
        files = {row["name"]: row for row in transfers.listing(conn, direction="in").rows}
    assert set(files) == {good.name, unreadable.name}
    taken, failed = files[good.name], files[unreadable.name]
    assert (taken["partner"], taken["outcome"], taken["reason"]) == ("filer", "taken", None)
    sent = (out / "archive" / good.name).read_bytes()
    assert (taken["size"], taken["sha256"]) == (len(sent), hashlib.sha256(sent).hexdigest())
    reason = (out / "failed" / "visits_filer_20260302_1.csv.reason.txt").read_text()
    assert failed["outcome"] == "failed" and failed["reason"] and failed["reason"] in reason
    assert failed["sha256"] == hashlib.sha256(b"\xff\xfe\x00not csv at all").hexdigest()


def test_a_poison_row_is_rejected_with_its_line_and_every_later_file_is_taken(make_hub, partner_folder, monkeypatch):
    """A row the store cannot hold, a file that breaks the reader and a name outside the contract:
    each refused with its reason, and the folder moves on."""
    hub = make_hub()
    ((tenant, vendor),) = vendors(hub.config, SftpChannel)
    out = partner_folder / "out"
    days = [
        month_of_visits(random.Random(10 + n), MARCH, CUSTOMERS[:2], prefix=f"P{n}", per_customer=5) for n in range(4)
    ]
    first = drop_daily_file(out, "filer", MARCH.first_day, days[0])
    broken = drop_daily_file(out, "filer", MARCH.first_day, days[1], seq=2)
    later = [
        drop_daily_file(out, "filer", MARCH.first_day.replace(day=2), day, seq=n) for n, day in enumerate(days[2:], 1)
    ]
    misnamed = out / "visits_filer_2026-03-04_1.csv"
    misnamed.write_bytes(first.read_bytes())
    (out / f"{misnamed.name}.done").write_bytes(b"")

    poison = days[0][3].visit_id  # line 5: the header is line 1
    real_row = visit_versions._row

    def row_the_store_cannot_hold(tenant, vendor, visit, message_id, now):
        row = real_row(tenant, vendor, visit, message_id, now)
        return row | {"version": 2**70} if visit.visit_id == poison else row

    real_read = visit_files.read_visit_csv
    broken_bytes = broken.read_bytes()

    def reader_that_breaks_on_the_second_file(stream):
        if stream.read() == broken_bytes:
            raise RuntimeError("a bug in the reader")
        stream.seek(0)
        return real_read(stream)

    monkeypatch.setattr(visit_versions, "_row", row_the_store_cannot_hold)
    monkeypatch.setattr(visit_files, "read_visit_csv", reader_that_breaks_on_the_second_file)
    assert pick_up_files(hub.jobs, tenant, vendor) == (3, 2)
    assert stored(hub, "filer") == len(days[0]) - 1 + len(days[2]) + len(days[3])
    (poison_letter,) = [letter for letter in letters(hub) if poison in letter]
    assert f"{first.name} line 5: the store cannot hold this visit" in poison_letter
    assert {p.name for p in (out / "archive").glob("*.csv")} == {first.name, *(f.name for f in later)}
    failed = out / "failed"
    assert "could not be processed (RuntimeError)" in (failed / f"{broken.name}.reason.txt").read_text()
    assert "visits_{vendor}_{YYYYMMDD}_{seq}.csv" in (failed / f"{misnamed.name}.reason.txt").read_text()
    assert not list(out.glob("*.csv"))


def test_status_shows_per_vendor_what_is_stored_and_how_intake_goes(make_hub, vendor_api, partner_folder):
    hub = make_hub()
    with LiveServer(create_app(hub, routes(hub))) as server:
        pushed = month_of_visits(random.Random(6), MARCH, CUSTOMERS[:1], prefix="S", per_customer=4)
        bad = encode_visit(pushed[0]) | {"visit_id": "BAD", "version": 0}
        answer = httpx.post(
            f"{server.url}/api/v1/visits",
            json={"visits": [encode_visit(v) for v in pushed] + [bad]},
            headers={"Authorization": f"Bearer {PUSH_TOKEN}"},
        )
        assert answer.json()["accepted"] == 4
    ((tenant, poller),) = vendors(hub.config, RestChannel)
    polled = poll(hub.jobs, tenant, poller)
    ((_, filer),) = vendors(hub.config, SftpChannel)
    drop_daily_file(partner_folder / "out", "filer", MARCH.first_day, pushed[:2])
    assert pick_up_files(hub.jobs, tenant, filer) == (1, 0)

    found = {vendor.vendor: vendor for vendor in status(hub.store, hub.config, TENANT, MARCH)}
    assert set(found) == {"pusher", "poller", "filer"}
    assert (found["pusher"].channels, found["poller"].channels, found["filer"].channels) == (
        ["push"],
        ["poll"],
        ["file"],
    )
    assert (found["pusher"].versions, found["pusher"].rejected, found["pusher"].open_dead_letters) == (4, 1, 1)
    assert found["poller"].versions == polled and found["poller"].last_poll_at is not None
    assert found["filer"].versions == 2 and found["filer"].last_batch_at is not None
    assert found["filer"].last_poll_at is None
    assert [v.versions for v in status(hub.store, hub.config, TENANT, Period(2026, 4))] == [0, 0, 0]
