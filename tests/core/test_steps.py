"""The idempotent consumer and the two kinds of failure, on both runtimes."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DataError

from core import deadletters, metrics
from core.consumer import PartnerCall, StepContext
from core.errors import Misconfigured, Rejected
from core.messages import Accepted, rerun
from core.steps import step
from core.store.tables import dead_letters, messages, processed
from schemas.envelope import Envelope
from tests.conftest import wait_for

calls: Counter[str] = Counter()
transient_failures: Counter[str] = Counter()
broken: set[str] = set()
overflowing: set[str] = set()


@step("test.effect", consumes=["test.effect"])
def effect(ctx: StepContext) -> None:
    """A step with an effect (a receipt in the outbox) that fails on command."""
    calls[ctx.envelope.id] += 1
    if ctx.envelope.id in broken:
        raise Rejected("amount is negative", where="payload.amount")
    if ctx.envelope.id in overflowing:
        raise DataError("INSERT ...", {}, ValueError("integer out of range"))
    if transient_failures[ctx.envelope.id] > 0:
        transient_failures[ctx.envelope.id] -= 1
        raise ConnectionError("partner is down")
    ctx.emit(
        "hub.receipt",
        {"of": ctx.envelope.id, "step": "test.effect", "handled_at": "2026-03-02T08:00:00Z", "outcome": "done"},
    )


def event() -> Envelope:
    return Envelope(type="test.effect", tenant="0125", source="test", payload={"amount": 1})


def effects_of(hub, envelope_id: str) -> list[dict]:
    with hub.store.begin() as conn:
        rows = conn.execute(select(messages.c.envelope).where(messages.c.direction == "out")).scalars()
        return [e for e in map(json.loads, rows) if e["causation_id"] == envelope_id]


def outcome(hub, envelope_id: str, step_name: str = "test.effect") -> str | None:
    with hub.store.begin() as conn:
        return conn.scalar(
            select(processed.c.outcome).where(processed.c.step == step_name, processed.c.key == envelope_id)
        )


def open_letters(hub, envelope_id: str) -> list[dict]:
    with hub.store.begin() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                select(dead_letters).where(dead_letters.c.message_id == envelope_id, dead_letters.c.status == "open")
            )
        ]


def test_a_message_delivered_twice_has_its_effect_once(make_hub):
    hub = make_hub()
    envelope = event()
    duplicates = metrics.steps.labels("test.effect", "duplicate")
    before = duplicates._value.get()
    hub.accept([(envelope, None)], channel="test")
    hub.bus.dispatch([("test.effect", envelope.id)])
    hub.bus.dispatch([("test.effect", envelope.id)])  # at-least-once redelivery
    wait_for(lambda: duplicates._value.get() - before == 2, what="both redeliveries seen as duplicates")
    assert outcome(hub, envelope.id) == "done"
    assert calls[envelope.id] == 1
    assert len(effects_of(hub, envelope.id)) == 1


def test_the_same_envelope_accepted_twice_is_stored_and_dispatched_once(make_hub):
    hub = make_hub()
    envelope = event()
    first = hub.accept([(envelope, b"first")], channel="test")
    second = hub.accept([(envelope, b"second")], channel="test")
    assert first.stored == [envelope.id] and second.duplicates == [envelope.id]
    wait_for(lambda: outcome(hub, envelope.id) == "done")
    assert calls[envelope.id] == 1
    assert len(effects_of(hub, envelope.id)) == 1


def test_one_id_twice_in_one_batch_is_stored_once_and_a_changed_one_is_a_conflict(make_hub):
    hub = make_hub()
    envelope = event()
    changed = envelope.model_copy(update={"payload": {"amount": 2}})
    accepted = hub.accept([(envelope, None), (envelope, b"again"), (changed, None)], channel="test")
    assert (accepted.stored, accepted.duplicates, accepted.conflicts) == ([envelope.id], [envelope.id], [2])
    wait_for(lambda: outcome(hub, envelope.id) == "done")
    assert calls[envelope.id] == 1
    assert hub.accept([(changed, None)], channel="test").conflicts == [0]


def test_one_envelope_sent_by_two_at_once_is_stored_and_dispatched_once(make_hub):
    """The second sender's insert waits on the first's row in the ledger, and sees it once that
    commits: a duplicate, never a second message nor an error."""
    hub = make_hub()
    envelopes = [event() for _ in range(50)]
    start = threading.Barrier(2)

    def send() -> Accepted:
        start.wait()
        return hub.accept([(envelope, None) for envelope in envelopes], channel="test")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: send(), range(2)))
    assert sorted(results[0].stored + results[1].stored) == sorted(e.id for e in envelopes)
    assert sorted(results[0].duplicates + results[1].duplicates) == sorted(e.id for e in envelopes)
    wait_for(lambda: all(outcome(hub, e.id) == "done" for e in envelopes))
    assert all(calls[e.id] == 1 for e in envelopes)


def test_a_permanent_error_is_dead_lettered_with_its_reason_and_not_retried(make_hub):
    hub = make_hub()
    envelope = event()
    broken.add(envelope.id)
    hub.accept([(envelope, None)], channel="test")
    letters = wait_for(lambda: open_letters(hub, envelope.id), what="a dead letter")
    assert letters[0]["kind"] == "rejected"
    assert letters[0]["reason"] == "payload.amount: amount is negative"
    assert outcome(hub, envelope.id) == "dead"
    told = wait_for(lambda: effects_of(hub, envelope.id))
    assert told[0]["payload"]["outcome"] == "rejected"  # the sender is told why
    assert calls[envelope.id] == 1


def test_a_transient_error_is_retried_and_then_succeeds(make_hub):
    hub = make_hub()
    envelope = event()
    transient_failures[envelope.id] = 2
    hub.accept([(envelope, None)], channel="test")
    wait_for(lambda: outcome(hub, envelope.id) == "done", what="success after retries")
    assert calls[envelope.id] == 3
    assert open_letters(hub, envelope.id) == []
    assert len(effects_of(hub, envelope.id)) == 1


def test_retries_used_up_end_in_a_dead_letter(make_hub):
    hub = make_hub()
    envelope = event()
    transient_failures[envelope.id] = 100
    hub.accept([(envelope, None)], channel="test")
    letters = wait_for(lambda: open_letters(hub, envelope.id), what="a dead letter")
    assert letters[0]["kind"] == "exhausted"
    assert "partner is down" in letters[0]["reason"]
    assert calls[envelope.id] == hub.settings.retry_max + 1
    assert outcome(hub, envelope.id) is None and effects_of(hub, envelope.id) == []


@pytest.mark.parametrize("cause", ["rejected", "exhausted"])
def test_replay_after_a_fix_processes_the_message_once(make_hub, cause):
    hub = make_hub()
    envelope = event()
    if cause == "rejected":
        broken.add(envelope.id)
    else:
        transient_failures[envelope.id] = 100
    hub.accept([(envelope, None)], channel="test")
    letter = wait_for(lambda: open_letters(hub, envelope.id))[0]
    failed_calls = calls[envelope.id]

    broken.discard(envelope.id)  # the fix
    transient_failures[envelope.id] = 0
    hub.replay(letter["id"], by="user:tester")
    wait_for(lambda: outcome(hub, envelope.id) == "done", what="the replayed step")

    assert calls[envelope.id] == failed_calls + 1
    done = [e for e in effects_of(hub, envelope.id) if e["payload"]["outcome"] == "done"]
    assert len(done) == 1
    with hub.store.begin() as conn:
        assert deadletters.show(conn, letter["id"])["status"] == "replayed"
        with pytest.raises(Rejected, match="already replayed"):
            deadletters.replay(conn, letter["id"], by="user:tester", accept_raw=None)


def test_one_bad_envelope_in_a_batch_neither_blocks_nor_undoes_the_others(make_hub):
    hub = make_hub()
    batch = [event() for _ in range(6)]
    broken.add(batch[1].id)
    transient_failures[batch[4].id] = 1
    hub.accept([(e, None) for e in batch], channel="test")  # one outbox batch: one bus message
    wait_for(lambda: all(outcome(hub, e.id) for e in batch), what="every envelope handled")
    assert [outcome(hub, e.id) for e in batch] == ["done", "dead", "done", "done", "done", "done"]
    assert [len(effects_of(hub, e.id)) for e in batch] == [1] * 6  # a receipt each, the bad one's says why
    assert open_letters(hub, batch[1].id)[0]["reason"] == "payload.amount: amount is negative"
    assert open_letters(hub, batch[4].id) == []


def test_a_value_the_store_cannot_hold_is_rejected_not_retried(make_hub):
    hub = make_hub()
    envelope = event()
    overflowing.add(envelope.id)
    hub.accept([(envelope, None)], channel="test")
    wait_for(lambda: outcome(hub, envelope.id) == "dead", what="the dead letter")
    (letter,) = open_letters(hub, envelope.id)
    assert letter["kind"] == "rejected" and "cannot hold a value of it (ValueError)" in letter["reason"]
    assert calls[envelope.id] == 1  # never retried


held: set[str] = set()


@step("test.partner", consumes=["test.partner"])
def call_partner(ctx: StepContext) -> None:
    """A step whose partner refuses the hub's key until the configuration is fixed."""
    calls[ctx.envelope.id] += 1
    if ctx.envelope.id in held:
        raise Misconfigured("sftp.example:22 refused the key of user ekero", where="private_key")
    ctx.emit(
        "hub.receipt",
        {"of": ctx.envelope.id, "step": "test.partner", "handled_at": "2026-03-02T08:00:00Z", "outcome": "done"},
    )


def test_the_hubs_own_fault_is_held_for_operations_and_runs_again_once_fixed(make_hub):
    hub = make_hub()
    envelope = Envelope(type="test.partner", tenant="0125", source="test", payload={})
    held.add(envelope.id)
    hub.accept([(envelope, None)], channel="test")
    wait_for(lambda: outcome(hub, envelope.id, "test.partner") == "dead", what="held")
    (letter,) = open_letters(hub, envelope.id)
    assert letter["kind"] == "misconfigured" and "refused the key" in letter["reason"]
    assert calls[envelope.id] == 1  # not retried: retrying cannot help until it is fixed
    assert effects_of(hub, envelope.id) == []  # and the sender is not told it was rejected
    held.discard(envelope.id)  # the configuration is fixed
    hub.replay(letter["id"], by="user:drift")
    wait_for(lambda: outcome(hub, envelope.id, "test.partner") == "done", what="done after the fix")
    assert [e["payload"]["outcome"] for e in effects_of(hub, envelope.id)] == ["done"]


sending = threading.Event()
settling = threading.Event()
go_on = threading.Event()
pause_in: dict[str, str] = {}
"""Envelope id -> where its first partner call waits for `go_on`: in the call or in its settling."""


@step("test.call", consumes=["test.call"], calls_partner=True)
def call_slow_partner(ctx: StepContext) -> PartnerCall:
    """A step whose partner call, the first time, waits where the test says."""
    envelope_id = ctx.envelope.id

    def send() -> int:
        calls[envelope_id] += 1
        if calls[envelope_id] == 1 and pause_in.get(envelope_id) == "call":
            sending.set()
            go_on.wait(30)
        return calls[envelope_id]

    def settle(_ctx: StepContext, number: object) -> None:
        if number == 1 and pause_in.get(envelope_id) == "settle":
            settling.set()
            go_on.wait(30)

    return PartnerCall(partner="0125/slow", send=send, settle=settle)


@pytest.mark.parametrize("during", ["call", "settle"])
def test_a_rerun_asked_for_while_the_partner_call_is_under_way_calls_again(make_hub, during):
    """A resend pressed while the first delivery is still being made (its file already written,
    say) is a new delivery, not lost as a duplicate of the one under way. One worker thread, so
    the new delivery comes after the first has settled."""
    hub = make_hub(worker_threads=1)
    envelope = Envelope(type="test.call", tenant="0125", source="test", payload={})
    for gate in (sending, settling, go_on):
        gate.clear()
    pause_in[envelope.id] = during
    hub.accept([(envelope, None)], channel="test")
    assert (sending if during == "call" else settling).wait(30)

    def resend() -> None:
        with hub.store.begin() as conn:
            rerun(conn, envelope.id, "test.call", "0125")

    rerunning = threading.Thread(target=resend)
    rerunning.start()
    time.sleep(0.5)  # the rerun commits meanwhile (on SQLite, once the settling transaction ends)
    go_on.set()
    rerunning.join(30)
    assert not rerunning.is_alive()
    hub.relay.nudge()
    wait_for(lambda: calls[envelope.id] == 2, what="the call made again")
    wait_for(lambda: outcome(hub, envelope.id, "test.call") == "done", what="the step done")
    time.sleep(0.3)
    assert calls[envelope.id] == 2
