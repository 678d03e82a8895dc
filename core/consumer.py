"""The idempotent consumer: how the bus runs a step on stored envelopes.

A bus message carries a batch of envelope ids for one step. The whole batch runs in one
transaction (a group commit: one commit for many messages); each envelope's idempotency key,
its state and its outbound effects commit together, so a message delivered twice has its effect
once. When anything in the batch fails, the batch is rolled back and run again one envelope per
transaction, so that one bad envelope neither blocks nor undoes the others.
"""
from __future__ import annotations

import logging
from functools import cached_property

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, update
from sqlalchemy.exc import DataError

from core import deadletters, messages, metrics
from core.config import HubConfig
from core.errors import Misconfigured, Rejected
from core.redaction import redact
from core.steps import Step
from core.store import Store, insert_ignore, utcnow
from core.store.tables import processed
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

    def emit(self, type: str, payload: dict, destination: str = CASE_SYSTEM) -> Envelope:
        """Send a new envelope, caused by this one, when this step commits."""
        envelope = self.envelope.caused(type, f"casehub/{self.step.name}", payload)
        self.outgoing.append((envelope, destination))
        return envelope


def run_step(store: Store, config: HubConfig, step: Step, envelope_ids: list[str]) -> None:
    """Run `step` on stored envelopes once in effect, however often they are delivered.

    Rejected input, and input with a value the store cannot hold (DataError), is dead-lettered
    with its reason, the sender is told, and it is not retried. Misconfigured (the hub's own
    fault) is dead-lettered for IT operations to fix and replay; the sender is not told.
    Any other exception is raised after the rest of the batch is done, for the broker to retry;
    the envelopes done by then are skipped on the retry. A handler whose batch failed runs again
    alone, so its only effects must be the ones it makes through its context.
    """
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
    claims = [{"step": step.name, "key": envelope_id, "outcome": "done", "processed_at": now}
              for envelope_id in dict.fromkeys(envelope_ids)]
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
        except Rejected as error:
            rejected += 1
            _dead_letter(conn, step, envelopes[envelope_id], error)
        except DataError as error:  # a value the store cannot hold: as permanent as bad input
            rejected += 1
            _dead_letter(conn, step, envelopes[envelope_id],
                         Rejected(f"the store cannot hold a value of it ({type(error.orig).__name__})"))
        except Misconfigured as error:  # the hub's own fault: kept for IT operations, the sender not told
            rejected += 1
            _hold(conn, step, envelopes[envelope_id], error)
    messages.send_many(conn, outgoing)
    metrics.steps.labels(step.name, "done").inc(len(claimed) - rejected)
    if rejected:
        metrics.steps.labels(step.name, "rejected").inc(rejected)


def _hold(conn: Connection, step: Step, envelope: Envelope, error: Misconfigured) -> None:
    """Keep the envelope as a dead letter of kind `misconfigured` until the configuration is fixed and
    it is replayed; no retries in between (they cannot help) and no word to the sender (not its fault)."""
    _mark_dead(conn, step, envelope)
    deadletters.record(conn, step=step.name, kind="misconfigured", reason=str(error), tenant=envelope.tenant,
                       message_id=envelope.id)
    log.error("step %s holds envelope %s until the configuration is fixed: %s", step.name, envelope.id,
              redact(str(error)))


def _dead_letter(conn: Connection, step: Step, envelope: Envelope, error: Rejected) -> None:
    """Keep the rejected envelope as a dead letter, mark its key dead, and tell the sender why."""
    _mark_dead(conn, step, envelope)
    deadletters.record(conn, step=step.name, kind="rejected", reason=str(error),
                       tenant=envelope.tenant, message_id=envelope.id)
    receipt = envelope.caused("hub.receipt", f"casehub/{step.name}", {
        "of": envelope.id, "step": step.name, "handled_at": utcnow().isoformat(),
        "outcome": "rejected", "reason": redact(str(error)),
    })
    messages.send_many(conn, [(receipt, CASE_SYSTEM)])
    log.warning("step %s rejected envelope %s: %s", step.name, envelope.id, redact(str(error)))


def _mark_dead(conn: Connection, step: Step, envelope: Envelope) -> None:
    conn.execute(update(processed).where(processed.c.step == step.name, processed.c.key == envelope.id)
                 .values(outcome="dead"))
