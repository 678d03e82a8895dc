"""Retention on both runtimes: each kind purged when its policy says and not a day before, nothing a
pending flow needs ever purged, tombstones that still know a duplicate, and legal holds."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random

import pytest
from sqlalchemy import func, insert, select, update

from core import audit, deadletters, retention
from core.config import HubConfig
from core.errors import Rejected
from core.intake import envelope_from
from core.messages import rerun
from core.store import utcnow
from core.store.tables import audit as audit_log
from core.store.tables import dead_letters, ledger, messages, outbox, processed
from core.transfers import transfers
from sandbox.case_system import CaseSystem
from sandbox.rest_provider import create_rest_provider_app
from sandbox.server import LiveServer
from schemas.identity import generate_organisation_number
from tests.conftest import TENANT, TOKEN, TOKEN_ENV, one_tenant, wait_for
from tests.flows.orders import row as order_row

PROVIDER_ORG = generate_organisation_number(random.Random(16)).digits


@pytest.fixture
def provider():
    with LiveServer(create_rest_provider_app(token="hub-calls-provider")) as server:
        yield server.url


@pytest.fixture
def hub_config(provider) -> HubConfig:
    os.environ.update({TOKEN_ENV: TOKEN, "CASEHUB_TEST_RETENTION_OUT": "hub-calls-provider"})
    return one_tenant(
        {  # takes orders and never acknowledges them
            "id": "tyst-ab",
            "kind": "provider",
            "organisation_number": PROVIDER_ORG,
            "channel": {"type": "rest", "url": provider, "token_env": "CASEHUB_TEST_RETENTION_OUT", "timeout": 5},
        }
    )


def accept(hub, *events: dict):
    return hub.accept(
        [(envelope_from(e, hub.config, sender="case_system"), json.dumps(e).encode()) for e in events], channel="test"
    )


def settled(hub, event_id: str) -> bool:
    """The echo step is done with the event and every delivery is sent."""
    with hub.store.begin() as conn:
        done = conn.scalar(select(func.count()).where(processed.c.key == event_id))
    return bool(done) and not unsent(hub)


def settled_event(hub) -> dict:
    """An event from the case system, stored, and done with by the echo step."""
    event = CaseSystem("http://unused", TOKEN, TENANT).event()
    accept(hub, event)
    wait_for(lambda: settled(hub, event["id"]), what="the echo step")
    return event


def purge(hub, days: float) -> dict[str, int]:
    return retention.purge(hub.store, hub.config.tenants[0], by="test", now=utcnow() + dt.timedelta(days=days))


def stored(hub, message_id: str) -> bool:
    """The message is kept whole (not purged to its tombstone)."""
    with hub.store.begin() as conn:
        return conn.execute(select(messages.c.envelope).where(messages.c.id == message_id)).first() is not None


def tombstone(hub, message_id: str):
    """The message's row in the ledger: its tombstone once it is purged."""
    with hub.store.begin() as conn:
        return conn.execute(select(ledger).where(ledger.c.id == message_id)).first()


TOMBSTONE_DAYS = 90 + retention.LATE.days + 1095
"""How long after its storing a message purged in its time keeps its tombstone: its 90 days,
`LATE`, and the audit log's three years."""


def stored_long_ago(conn, message_id: str, when: dt.datetime) -> None:
    """The message as if stored at `when`: its row, its ledger's and its deliveries', which carry it."""
    for table in (messages, ledger):
        conn.execute(update(table).where(table.c.id == message_id).values(stored_at=when))
    conn.execute(update(outbox).where(outbox.c.message_id == message_id).values(stored_at=when, created_at=when))


def unsent(hub) -> int:
    """How many deliveries are still to be sent."""
    with hub.store.begin() as conn:
        return int(conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))))


def feed_entries(hub) -> int:
    with hub.store.begin() as conn:
        return int(conn.scalar(select(func.count()).where(outbox.c.destination.like("exchange:%"))))


def test_each_kind_is_purged_when_its_policy_says_and_not_a_day_before(make_hub):
    hub = make_hub()
    event = settled_event(hub)
    with hub.store.begin() as conn:
        conn.execute(
            insert(transfers).values(
                tenant=TENANT,
                partner="p",
                direction="out",
                channel="sftp",
                name="f.csv",
                size=1,
                sha256="0" * 64,
                at=utcnow(),
                outcome="delivered",
            )  # fmt: skip
        )
        letter = deadletters.record(conn, step="echo", kind="rejected", reason="bad", tenant=TENANT, raw=b"{}")
        conn.execute(
            dead_letters.update().where(dead_letters.c.id == letter).values(status="replayed", replayed_at=utcnow())
        )
        audit.record(
            conn, actor="user:anna", action="message.read", tenant=TENANT, persons=[event["payload"]["person"]]
        )

    assert purge(hub, 29) == {kind: 0 for kind in retention.counted()}
    assert purge(hub, 31)["dispatches"] >= 1  # the event's delivery to its step, and its processed key
    with hub.store.begin() as conn:
        assert not conn.scalar(select(func.count()).where(processed.c.key == event["id"]))
    assert stored(hub, event["id"])

    assert purge(hub, 89)["messages"] == 0
    assert feed_entries(hub) >= 1  # the receipt's, sent to the case system's exchange
    taken = purge(hub, 91)
    assert taken["messages"] >= 2 and taken["dead_letters"] == 1  # the event and its receipt to the case system
    assert not stored(hub, event["id"]) and feed_entries(hub) == 0
    left = tombstone(hub, event["id"])
    assert left.raw_sha256 == hashlib.sha256(json.dumps(event).encode()).digest() and len(left.document_sha256) == 32
    assert (left.tenant, left.type, left.purged_at) == (TENANT, "case.event_recorded", None)  # purged in its time

    assert purge(hub, 729)["transfers"] == 0 and purge(hub, 731)["transfers"] == 1
    assert purge(hub, 1094)["audit"] == 0
    assert purge(hub, 1096)["audit"] >= 1
    with hub.store.begin() as conn:
        assert not conn.scalar(select(func.count()).select_from(audit_log).where(audit_log.c.action == "message.read"))
    (last, *_) = retention.last_purges(hub.store)
    assert last["counts"]["audit"] >= 1 and last["finished_at"] is not None
    assert purge(hub, TOMBSTONE_DAYS - 1)["tombstones"] == 0  # as long as the audit log that names them
    assert purge(hub, TOMBSTONE_DAYS + 1)["tombstones"] >= 2
    assert tombstone(hub, event["id"]) is None


def test_batches_smaller_than_the_work_take_each_record_once(make_hub, monkeypatch):
    """Batches of two over seven events: every delivery to a step and every message is counted by
    the plan and taken by the purge once, and three years on every tombstone is taken once,
    whatever batch it falls in."""
    monkeypatch.setattr(retention, "BATCH", 2)
    hub = make_hub()
    case_system = CaseSystem("http://unused", TOKEN, TENANT)
    events = [case_system.event() for _ in range(7)]
    accept(hub, *events)
    wait_for(lambda: all(settled(hub, event["id"]) for event in events), what="the echo step")
    with hub.store.begin() as conn:
        deliveries = conn.scalar(select(func.count()).where(outbox.c.destination.like("step:%")))
        kept = conn.scalar(select(func.count()).select_from(messages))

    tenant, later = hub.config.tenants[0], utcnow() + dt.timedelta(days=31)
    assert retention.plan(hub.store, tenant, now=later)["dispatches"] == deliveries >= 7
    assert purge(hub, 31)["dispatches"] == deliveries
    with hub.store.begin() as conn:
        assert not conn.scalar(select(func.count()).select_from(processed))
    assert retention.plan(hub.store, tenant, now=utcnow() + dt.timedelta(days=91))["messages"] == kept >= 14
    assert purge(hub, 91)["messages"] == kept
    assert not any(stored(hub, event["id"]) for event in events)
    assert purge(hub, TOMBSTONE_DAYS + 1)["tombstones"] == kept
    with hub.store.begin() as conn:
        assert not conn.scalar(select(func.count()).select_from(ledger))


def test_a_message_run_again_on_its_step_is_purged_whole_in_batches_of_one(make_hub, monkeypatch):
    """A dead letter's replay or an order's reminder delivers a message to its step again, under the
    same processed key. The new delivery replaces the earlier one: left beside it, in a batch of its
    own, the earlier one would wait for ever on the key the first batch took, and its message with it."""
    monkeypatch.setattr(retention, "BATCH", 1)
    hub = make_hub()
    event = settled_event(hub)
    with hub.store.begin() as conn:
        rerun(conn, event["id"], "echo", TENANT)
    wait_for(lambda: settled(hub, event["id"]), what="the echo step, again")
    to_step = outbox.c.destination.like("step:%")
    with hub.store.begin() as conn:
        assert conn.scalar(select(func.count()).where(to_step, outbox.c.message_id == event["id"])) == 1

    assert purge(hub, 31)["dispatches"] == 1
    with hub.store.begin() as conn:
        assert not conn.scalar(select(func.count()).where(to_step))
    assert purge(hub, 91)["messages"] >= 1
    assert not stored(hub, event["id"])


def test_a_delivery_its_step_was_done_with_long_after_it_was_sent_goes_with_its_key(make_hub):
    """A step that claimed its key days after its delivery was sent (retried through an outage) is
    not among the keys claimed near the batch's sending (`retention.NEAR`): its key is looked up
    apart, and both go when their time is past."""
    hub = make_hub()
    event = settled_event(hub)
    with hub.store.begin() as conn:
        conn.execute(
            update(outbox).where(outbox.c.message_id == event["id"]).values(sent_at=utcnow() - dt.timedelta(days=10))
        )
    assert purge(hub, 29)["dispatches"] == 0  # the step's work is 29 days old: within its 30
    assert purge(hub, 31)["dispatches"] == 1
    with hub.store.begin() as conn:
        assert not conn.scalar(select(func.count()).where(processed.c.key == event["id"]))
        assert not conn.scalar(select(func.count()).where(outbox.c.destination.like("step:%")))


def test_a_purged_message_is_still_known_as_a_duplicate_and_a_changed_one_as_a_conflict(make_hub):
    hub = make_hub()
    event = settled_event(hub)
    assert purge(hub, 91)["messages"] >= 1
    again = accept(hub, event)
    assert again.duplicates == [event["id"]] and not again.stored and not again.conflicts
    changed = event | {"payload": event["payload"] | {"recorded_by": "HANDL9"}}
    assert accept(hub, changed).conflicts == [0]


def test_a_message_purged_late_keeps_its_tombstone_the_audit_logs_time_after_its_purge(make_hub):
    """Held for a year, a message is purged long after its time: its purge is written to its
    ledger row, and its tombstone kept three years from then, not from its storing."""
    hub = make_hub()
    event = settled_event(hub)
    with hub.store.begin() as conn:
        hold = retention.hold(conn, tenant=TENANT, person=event["payload"]["person"], reason="JO-anmälan", by="anna")
    assert purge(hub, 91)["held"] >= 1 and stored(hub, event["id"])
    with hub.store.begin() as conn:
        retention.release(conn, hold, tenant=TENANT, by="anna")
    assert purge(hub, 400)["messages"] >= 1 and not stored(hub, event["id"])
    assert tombstone(hub, event["id"]).purged_at is not None
    purge(hub, 400 + 1094)  # takes the tombstone of its receipt, purged in its time
    assert tombstone(hub, event["id"]) is not None
    purge(hub, 400 + 1096)
    assert tombstone(hub, event["id"]) is None


def test_a_policy_shortened_since_keeps_the_tombstones_of_what_the_longer_one_purged_as_long(make_hub):
    """Purged in its time under a policy of a year, a message's tombstone is kept a year, `LATE`
    and three years from its storing, though the policy was shortened to 90 days since."""
    hub = make_hub()
    event = settled_event(hub)
    year = HubConfig.model_validate(
        {"tenants": [{"code": TENANT, "name": "E", "retention": {"message_days": 365}}]}
    ).tenants[0]
    taken = retention.purge(hub.store, year, by="test", now=utcnow() + dt.timedelta(days=366))
    assert taken["messages"] >= 1 and tombstone(hub, event["id"]).purged_at is None  # in its time
    purge(hub, TOMBSTONE_DAYS + 1)  # by the 90 days the policy says now
    assert tombstone(hub, event["id"]) is not None
    purge(hub, 365 + retention.LATE.days + 1096)
    assert tombstone(hub, event["id"]) is None


def test_what_a_pending_flow_needs_is_never_purged(make_hub):
    hub = make_hub()
    case_system = CaseSystem("http://unused", TOKEN, TENANT)
    order = case_system.order(PROVIDER_ORG)  # delivered, never acknowledged
    stranger = case_system.order(generate_organisation_number(random.Random(2)).digits)  # no such provider
    accept(hub, order, stranger)
    wait_for(lambda: (found := order_row(hub, order["payload"]["order_id"])) and found.state == "delivered")
    wait_for(lambda: first_open_letter(hub) and settled(hub, order["id"]), what="the dead letter")
    purge(hub, 3650)
    assert stored(hub, order["id"])  # the order flow still needs it (core.retention.keeps)
    assert stored(hub, stranger["id"])  # its dead letter is open
    letter = first_open_letter(hub)
    with hub.store.begin() as conn:
        assert deadletters.show(conn, letter)["purged_at"] is None


def test_a_message_still_on_its_way_to_a_step_is_not_purged(make_hub):
    hub = make_hub(worker=False)  # delivered to the step's queue, never processed
    event = CaseSystem("http://unused", TOKEN, TENANT).event()
    accept(hub, event)
    purge(hub, 3650)
    assert stored(hub, event["id"])


def test_a_message_a_step_was_done_with_lately_is_kept_until_its_time(make_hub):
    """Sent to its step long ago, but done only now (a step retried for days, say): its time is
    counted from when the step was done."""
    hub = make_hub()
    event = settled_event(hub)
    long_ago = utcnow() - dt.timedelta(days=200)
    with hub.store.begin() as conn:
        stored_long_ago(conn, event["id"], long_ago)
        conn.execute(update(outbox).where(outbox.c.message_id == event["id"]).values(sent_at=long_ago))
    assert purge(hub, 60)["messages"] == 0  # done now: 60 days on is within its 90
    assert stored(hub, event["id"])
    purge(hub, 100)
    assert not stored(hub, event["id"]) and tombstone(hub, event["id"]) is not None


def test_a_message_run_again_long_after_its_storing_is_kept_until_its_step_is_done_again(make_hub):
    """A dead letter's replay, an order's resend or its reminder delivers an old message
    to its step again. The purge finds a message's deliveries by its time of storing, which the new
    delivery carries too: the message stays while the step has it, and goes its time after."""
    hub = make_hub(worker=False)  # the steps' queues are filled, never worked
    event = CaseSystem("http://unused", TOKEN, TENANT).event()
    accept(hub, event)
    wait_for(lambda: not unsent(hub), what="the delivery to the echo step")
    long_ago = utcnow() - dt.timedelta(days=200)
    with hub.store.begin() as conn:  # done long ago
        stored_long_ago(conn, event["id"], long_ago)
        conn.execute(update(outbox).where(outbox.c.message_id == event["id"]).values(sent_at=long_ago))
        conn.execute(insert(processed).values(step="echo", key=event["id"], outcome="done", processed_at=long_ago))
    assert retention.plan(hub.store, hub.config.tenants[0])["messages"] == 1

    with hub.store.begin() as conn:
        rerun(conn, event["id"], "echo", TENANT)
    assert retention.plan(hub.store, hub.config.tenants[0])["messages"] == 0
    wait_for(lambda: not unsent(hub), what="the delivery to the echo step, again")
    assert purge(hub, 0)["messages"] == 0
    assert stored(hub, event["id"])

    with hub.store.begin() as conn:  # the step done with it again, now
        conn.execute(insert(processed).values(step="echo", key=event["id"], outcome="done", processed_at=utcnow()))
    assert purge(hub, 60)["messages"] == 0  # within its 90 days of the step's work
    assert purge(hub, 91)["messages"] == 1
    assert not stored(hub, event["id"]) and tombstone(hub, event["id"]) is not None


def test_a_replay_of_a_purged_dead_letter_says_its_bytes_are_gone(make_hub):
    hub = make_hub()
    with hub.store.begin() as conn:
        letter = deadletters.record(conn, step="echo", kind="rejected", reason="bad", tenant=TENANT, raw=b"{}")
        conn.execute(
            dead_letters.update().where(dead_letters.c.id == letter).values(status="replayed", replayed_at=utcnow())
        )
    assert purge(hub, 91)["dead_letters"] == 1
    with hub.store.begin() as conn, pytest.raises(Rejected, match="its bytes are gone: purged on"):
        deadletters.replay(conn, letter, by="user:drift", accept_raw=lambda *_: "never")


def test_running_a_purged_message_again_says_its_bytes_are_gone(make_hub):
    hub = make_hub()
    event = settled_event(hub)
    purge(hub, 91)
    assert not stored(hub, event["id"])
    with hub.store.begin() as conn, pytest.raises(Rejected, match="its bytes are gone"):
        rerun(conn, event["id"], "echo", TENANT)
    assert not unsent(hub)


def test_a_held_person_survives_the_purge_until_the_hold_is_released(make_hub):
    hub = make_hub()
    case_system = CaseSystem("http://unused", TOKEN, TENANT)
    held, other = case_system.event(), case_system.event()
    accept(hub, held, other)
    wait_for(lambda: settled(hub, held["id"]) and settled(hub, other["id"]), what="the echo step")
    with hub.store.begin() as conn:
        hold = retention.hold(conn, tenant=TENANT, person=held["payload"]["person"], reason="JO-anmälan", by="anna")
        audit.record(conn, actor="user:anna", action="message.read", tenant=TENANT, persons=[held["payload"]["person"]])
    taken = purge(hub, 1096)
    assert not stored(hub, other["id"])
    assert stored(hub, held["id"]) and taken["held"] >= 2  # its message, its audit entry
    purge(hub, TOMBSTONE_DAYS + 1)  # the ledger's rows of its time go, but not the held message's
    assert stored(hub, held["id"]) and tombstone(hub, held["id"]) is not None
    with hub.store.begin() as conn:
        retention.release(conn, hold, tenant=TENANT, by="anna")
        actions = set(conn.scalars(select(audit_log.c.action)))
    assert {"retention.hold", "retention.release"} <= actions
    purge(hub, 1096)
    assert not stored(hub, held["id"])


def test_a_policy_that_forgets_too_soon_is_refused_with_its_place():
    with pytest.raises(ValueError, match=r"retention.dispatch_days"):
        HubConfig.model_validate({"tenants": [{"code": TENANT, "name": "E", "retention": {"dispatch_days": 3}}]})


def first_open_letter(hub) -> int | None:
    with hub.store.begin() as conn:
        return conn.scalar(select(dead_letters.c.id).where(dead_letters.c.status == "open"))
