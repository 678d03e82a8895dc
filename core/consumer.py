"""The idempotent consumer: how the bus runs a step on stored envelopes.

A bus message carries a batch of envelope ids for one step. The whole batch runs in one
transaction (a group commit: one commit for many messages); each envelope's idempotency key,
its state and its outbound effects commit together, so a message delivered twice has its effect
once. When anything in the batch fails, the batch is rolled back and run again one envelope per
transaction, so that one bad envelope neither blocks nor undoes the others.

A step that calls a partner holds no transaction while it waits for the partner: it decides in
one short transaction, the call is made outside any, and its outcome is recorded in another
(`PartnerCall`). A partner that is down then holds up only its own deliveries, even on SQLite,
whose one write lock every other writer needs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, select, update
from sqlalchemy.exc import DataError

from core import deadletters, messages, metrics
from core.breaker import Breakers
from core.config import HubConfig
from core.errors import Misconfigured, Rejected
from core.redaction import redact
from core.steps import Step
from core.store import Store, insert_ignore, utcnow
from core.store.tables import outbox, processed
from schemas.bounded import error_message
from schemas.documents import document_of
from schemas.envelope import Envelope

log = logging.getLogger(__name__)

CASE_SYSTEM_EXCHANGE = "casehub.events"
CASE_SYSTEM = f"exchange:{CASE_SYSTEM_EXCHANGE}"
"""The destination of events for the case system: the outbound AMQP exchange and the feed."""


class StepContext:
    """What a step sees: the envelope, its document, and the transaction its effects go into."""

    def __init__(self, conn: Connection, envelope: Envelope, step: Step, config: HubConfig) -> None:
        self.conn = conn
        self.envelope = envelope
        self.step = step
        self.config = config
        self.outgoing: list[tuple[Envelope, str]] = []

    @cached_property
    def document(self) -> BaseModel:
        try:
            return document_of(self.envelope)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in ("payload", *first["loc"]))
            raise Rejected(error_message(first), where=where) from None
        except ValueError as error:
            raise Rejected(str(error)) from None

    def emit(self, type: str, payload: dict[str, Any], destination: str = CASE_SYSTEM) -> Envelope:
        """Send a new envelope, caused by this one, when this step commits."""
        envelope = self.envelope.caused(type, f"casehub/{self.step.name}", payload)
        self.outgoing.append((envelope, destination))
        return envelope


@dataclass(frozen=True)
class PartnerCall:
    """What a step that calls a partner returns from its transaction: the call, and how to record
    its outcome (the result, or the exception it raised) in a new transaction. The outcome decides
    the envelope's fate as a handler's exception would: Rejected is dead-lettered, Misconfigured
    held, any other exception retried."""

    partner: str
    """Whom the call is to, as the circuit breaker knows it: `tenant/partner-id`."""
    send: Callable[[], object]
    settle: Callable[[StepContext, object], None]


def run_step(store: Store, config: HubConfig, step: Step, envelope_ids: list[str], *, breakers: Breakers) -> None:
    """Run `step` on stored envelopes once in effect, however often they are delivered.

    Rejected input, and input with a value the store cannot hold (DataError), is dead-lettered
    with its reason, the sender is told, and it is not retried. Misconfigured (the hub's own
    fault) is dead-lettered for IT operations to fix and replay; the sender is not told.
    Any other exception is raised after the rest of the batch is done, for the broker to retry;
    the envelopes done by then are skipped on the retry. A handler whose batch failed runs again
    alone, so its only effects must be the ones it makes through its context.
    """
    if step.calls_partner:
        for envelope_id in envelope_ids:
            _call_partner(store, config, step, envelope_id, breakers)
        return
    if len(envelope_ids) > 1:
        try:
            with store.begin() as conn:
                _run(conn, config, step, envelope_ids, isolate=False)
            return
        except Exception:
            pass  # something in the batch failed: find it, one envelope per transaction
    failure = None
    for envelope_id in envelope_ids:
        try:
            with store.begin() as conn:
                _run(conn, config, step, [envelope_id], isolate=True)
        except Exception as error:
            failure = failure or error
    if failure is not None:
        raise failure


def _run(conn: Connection, config: HubConfig, step: Step, envelope_ids: list[str], *, isolate: bool) -> None:
    """Claim the envelopes not yet done and run the step on each, in the caller's transaction.

    With `isolate`, a Rejected envelope is rolled back to a savepoint and dead-lettered;
    without it, Rejected propagates like any other error.
    """
    now = utcnow()
    claims = [
        {"step": step.name, "key": envelope_id, "outcome": "done", "processed_at": now}
        for envelope_id in dict.fromkeys(envelope_ids)
    ]
    claimed = {row.key for row in insert_ignore(conn, processed, claims, returning=[processed.c.key])}
    duplicates = len(claims) - len(claimed)
    if duplicates:
        metrics.steps.labels(step.name, "duplicate").inc(duplicates)
    if not claimed:
        return
    envelopes = messages.load_many_envelopes(conn, list(claimed))
    missing = claimed - envelopes.keys()
    if missing:
        raise LookupError(f"envelopes {sorted(missing)} are not in the store")
    outgoing: list[tuple[Envelope, str]] = []
    rejected = 0
    for envelope_id in (e for e in dict.fromkeys(envelope_ids) if e in claimed):
        context = StepContext(conn, envelopes[envelope_id], step, config)
        if not isolate:
            step.handler(context)
            outgoing.extend(context.outgoing)
            continue
        try:
            with conn.begin_nested():
                step.handler(context)
                messages.send_many(conn, context.outgoing)
        except Exception as error:
            if not _dead_end(conn, step, envelopes[envelope_id], error):
                raise
            rejected += 1
    messages.send_many(conn, outgoing)
    metrics.steps.labels(step.name, "done").inc(len(claimed) - rejected)
    if rejected:
        metrics.steps.labels(step.name, "rejected").inc(rejected)


def _call_partner(store: Store, config: HubConfig, step: Step, envelope_id: str, breakers: Breakers) -> None:
    """Run a step that calls a partner: decide, call outside any transaction, record the outcome.

    The envelope's key is claimed only with a final outcome, so a crash or a retryable failure
    anywhere leaves it to be run again (the step keeps the call safe to repeat). A rerun asked
    for while the call is under way (`core.messages.rerun`) replaces its delivery: the outcome
    is then recorded but the key is left to the new delivery, which runs the step again.
    """
    with store.begin() as conn:
        if _done(conn, step, envelope_id):
            metrics.steps.labels(step.name, "duplicate").inc()
            return
        delivery = _delivery(conn, step, envelope_id)
        envelope = messages.load(conn, envelope_id)
        if envelope is None:
            raise LookupError(f"envelope {envelope_id} is not in the store")
        context = StepContext(conn, envelope, step, config)
        try:
            with conn.begin_nested():
                call = step.handler(context)
                messages.send_many(conn, context.outgoing)
        except Exception as error:
            if not _dead_end(conn, step, envelope, error, claim=True):
                raise
            metrics.steps.labels(step.name, "rejected").inc()
            return
        if call is None:
            _claim(conn, step, envelope_id, "done")
            metrics.steps.labels(step.name, "done").inc()
            return
    try:
        outcome = breakers.call(call.partner, call.send)
    except Exception as error:
        outcome = error
    with store.begin() as conn:
        if _done(conn, step, envelope_id):  # another delivery of the same message got there first
            return
        context = StepContext(conn, envelope, step, config)
        call.settle(context, outcome)
        messages.send_many(conn, context.outgoing)
        # last, as a rerun locks what it needs before the delivery it replaces: no deadlock
        if _delivery(conn, step, envelope_id, lock=True) != delivery:
            return
        if not isinstance(outcome, Exception):
            _claim(conn, step, envelope_id, "done")
            metrics.steps.labels(step.name, "done").inc()
        elif _dead_end(conn, step, envelope, outcome, claim=True):
            metrics.steps.labels(step.name, "rejected").inc()
    if isinstance(outcome, Exception) and not isinstance(outcome, (Rejected, Misconfigured)):
        raise outcome


def _done(conn: Connection, step: Step, envelope_id: str) -> bool:
    return (
        conn.scalar(select(processed.c.outcome).where(processed.c.step == step.name, processed.c.key == envelope_id))
        is not None
    )


def _delivery(conn: Connection, step: Step, envelope_id: str, *, lock: bool = False) -> int | None:
    """The outbox row that delivers the envelope to the step now (a rerun replaces it), if any.
    With `lock`, a rerun waits for this transaction to end before it replaces the row."""
    query = (
        select(outbox.c.id)
        .where(outbox.c.message_id == envelope_id, outbox.c.destination == f"step:{step.name}")
        .order_by(outbox.c.id.desc())
        .limit(1)
    )
    return conn.scalar(query.with_for_update() if lock else query)


def _claim(conn: Connection, step: Step, envelope_id: str, outcome: str) -> None:
    insert_ignore(
        conn, processed, {"step": step.name, "key": envelope_id, "outcome": outcome, "processed_at": utcnow()}
    )


def _dead_end(conn: Connection, step: Step, envelope: Envelope, error: Exception, *, claim: bool = False) -> bool:
    """Dead-letter (Rejected, a value the store cannot hold) or hold (Misconfigured) an envelope that
    no retry can mend, and say True; False for any other error. With `claim`, its key is not yet
    claimed, and is claimed dead."""
    if isinstance(error, DataError):  # a value the store cannot hold: as permanent as bad input
        error = Rejected(f"the store cannot hold a value of it ({type(error.orig).__name__})")
    if not isinstance(error, (Rejected, Misconfigured)):
        return False
    if claim:
        _claim(conn, step, envelope.id, "dead")
    if isinstance(error, Misconfigured):  # the hub's own fault: kept for IT operations, the sender not told
        _hold(conn, step, envelope, error)
    else:
        _dead_letter(conn, step, envelope, error)
    return True


def _hold(conn: Connection, step: Step, envelope: Envelope, error: Misconfigured) -> None:
    """Keep the envelope as a dead letter of kind `misconfigured` until the configuration is fixed and
    it is replayed; no retries in between (they cannot help) and no word to the sender (not its fault)."""
    _mark_dead(conn, step, envelope)
    deadletters.record(
        conn, step=step.name, kind="misconfigured", reason=str(error), tenant=envelope.tenant, message_id=envelope.id
    )
    log.error(
        "step %s holds envelope %s until the configuration is fixed: %s", step.name, envelope.id, redact(str(error))
    )


def _dead_letter(conn: Connection, step: Step, envelope: Envelope, error: Rejected) -> None:
    """Keep the rejected envelope as a dead letter, mark its key dead, and tell the sender why."""
    _mark_dead(conn, step, envelope)
    deadletters.record(
        conn, step=step.name, kind="rejected", reason=str(error), tenant=envelope.tenant, message_id=envelope.id
    )
    receipt = envelope.caused(
        "hub.receipt",
        f"casehub/{step.name}",
        {
            "of": envelope.id,
            "step": step.name,
            "handled_at": utcnow().isoformat(),
            "outcome": "rejected",
            "reason": redact(str(error)),
        },
    )
    messages.send_many(conn, [(receipt, CASE_SYSTEM)])
    log.warning("step %s rejected envelope %s: %s", step.name, envelope.id, redact(str(error)))


def _mark_dead(conn: Connection, step: Step, envelope: Envelope) -> None:
    conn.execute(
        update(processed).where(processed.c.step == step.name, processed.c.key == envelope.id).values(outcome="dead")
    )
