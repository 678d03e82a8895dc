"""The idempotent consumer: how the bus runs a step on a stored envelope.

The step's effects and its idempotency key commit in one transaction, so a message delivered
twice has its effect once.
"""
from __future__ import annotations

import logging
from functools import cached_property

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, update

from core import deadletters, messages, metrics
from core.errors import Rejected
from core.intake import reason_of
from core.redaction import redact
from core.steps import Step
from core.store import Store, insert_ignore, utcnow
from core.store.tables import processed
from schemas.documents import document_of
from schemas.envelope import Envelope

log = logging.getLogger(__name__)

CASE_SYSTEM = "exchange:casehub.events"
"""The destination of events for the case system: the outbound AMQP exchange and the feed."""


class StepContext:
    """What a step sees: the envelope, its document, and the transaction its effects go into."""

    def __init__(self, conn: Connection, envelope: Envelope, step: Step) -> None:
        self.conn = conn
        self.envelope = envelope
        self.step = step

    @cached_property
    def document(self) -> BaseModel:
        try:
            return document_of(self.envelope)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in ("payload", *first["loc"]))
            raise Rejected(reason_of(first), where=where) from None
        except ValueError as error:
            raise Rejected(str(error)) from None

    def emit(self, type: str, payload: dict, destination: str = CASE_SYSTEM) -> Envelope:
        """Send a new envelope, caused by this one, when this step commits."""
        envelope = self.envelope.caused(type, f"casehub/{self.step.name}", payload)
        messages.send(self.conn, envelope, destination)
        return envelope


def run_step(store: Store, step: Step, envelope_id: str) -> None:
    """Run `step` on a stored envelope once in effect, however often it is delivered.

    Rejected input is dead-lettered with its reason, the sender is told, and it is not retried.
    Any other exception rolls everything back and goes to the broker's retries.
    """
    with store.begin() as conn:
        claim = {"step": step.name, "key": envelope_id, "outcome": "done", "processed_at": utcnow()}
        if insert_ignore(conn, processed, claim, returning=[processed.c.key]).first() is None:
            metrics.steps.labels(step.name, "duplicate").inc()
            return
        envelope = messages.load(conn, envelope_id)
        if envelope is None:
            raise LookupError(f"envelope {envelope_id} is not in the store")
        try:
            with conn.begin_nested():
                step.handler(StepContext(conn, envelope, step))
        except Rejected as error:
            conn.execute(
                update(processed)
                .where(processed.c.step == step.name, processed.c.key == envelope_id)
                .values(outcome="dead")
            )
            deadletters.record(conn, step=step.name, kind="rejected", reason=str(error),
                               tenant=envelope.tenant, message_id=envelope_id)
            StepContext(conn, envelope, step).emit(
                "hub.receipt",
                {"of": envelope_id, "step": step.name, "handled_at": utcnow().isoformat(),
                 "outcome": "rejected", "reason": str(error)},
            )
            log.warning("step %s rejected envelope %s: %s", step.name, envelope_id, redact(str(error)))
            metrics.steps.labels(step.name, "rejected").inc()
            return
    metrics.steps.labels(step.name, "done").inc()
