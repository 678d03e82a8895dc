"""Every file and document in and out: name, size, SHA-256, time, partner and outcome, for IT
operations.

Out: every transport answers a send with a `Receipt`; `call` wraps a step's sending into a
`PartnerCall` that, once the partner took everything, records each receipt as a transfer and
writes one audit line, in the transaction that settles the step. A flow does neither itself.
In: `adapters.channels.pick_up` gives each file it took or failed to `picked_up`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Column, Connection, Index, Integer, String, Table, Text, insert, select

from core import audit
from core.config import Partner
from core.consumer import PartnerCall, StepContext
from core.paging import Page, page
from core.store import Store, utcnow
from core.store.tables import Serial, UtcDateTime, metadata

transfers = Table(
    "transfers",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("tenant", String(4), nullable=False),
    Column("partner", String(63), nullable=False, doc="the partner id: the receiver out, the sender in"),
    Column("direction", String(3), nullable=False, doc="`out` or `in`"),
    Column("channel", String(10), nullable=False),
    Column("name", String(200), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("cause", String(64), nullable=True, doc="the envelope whose step sent it"),
    Column("at", UtcDateTime(), nullable=False, doc="when it was delivered or picked up"),
    Column("outcome", String(10), nullable=False, doc="`delivered` out; `taken` or `failed` in"),
    Column("reason", Text, nullable=True, doc="why a file in failed"),
    Index("transfers_partner", "tenant", "partner", "at"),
)


@dataclass(frozen=True)
class Receipt:
    """What a partner's endpoint took: the name, size and SHA-256 of the bytes, over which
    transport, and when the partner says it received them."""

    name: str
    size: int
    sha256: str
    transport: str
    received_at: dt.datetime

    @classmethod
    def of(cls, name: str, data: bytes, transport: str, received_at: dt.datetime | None = None) -> Receipt:
        return cls(name, len(data), hashlib.sha256(data).hexdigest(), transport, received_at or utcnow())


def call(
    ctx: StepContext,
    partner: Partner,
    send: Callable[[], Sequence[Receipt]],
    *,
    action: str,
    subject: str,
    detail: str,
    settle: Callable[[StepContext, list[Receipt] | Exception], None] | None = None,
) -> PartnerCall:
    """The call of a step that sends to `partner`: `send()` returns a receipt per file or document.

    When it succeeds, each receipt is recorded as a transfer and `action` is audited once, with
    `subject` and `detail`; then `settle(ctx, receipts or exception)` records the flow's outcome
    in the same transaction.
    """
    tenant, step, cause = ctx.envelope.tenant, ctx.step.name, ctx.envelope.id

    def settled(ctx: StepContext, outcome: object) -> None:
        result: list[Receipt] | Exception
        if isinstance(outcome, Exception):
            result = outcome
        else:
            result = list(cast(Sequence[Receipt], outcome))
            for receipt in result:
                record(ctx.conn, tenant=tenant, partner=partner.id, receipt=receipt, cause=cause)
            audit.record(ctx.conn, actor=f"step:{step}", action=action, tenant=tenant, subject=subject, detail=detail)
        if settle is not None:
            settle(ctx, result)

    return PartnerCall(f"{tenant}/{partner.id}", send, settled)


def record(
    conn: Connection,
    *,
    tenant: str,
    partner: str,
    receipt: Receipt,
    cause: str | None,
    direction: str = "out",
    outcome: str = "delivered",
    reason: str | None = None,
) -> None:
    conn.execute(
        insert(transfers).values(
            tenant=tenant,
            partner=partner,
            direction=direction,
            channel=receipt.transport,
            name=receipt.name,
            size=receipt.size,
            sha256=receipt.sha256,
            cause=cause,
            at=utcnow(),
            outcome=outcome,
            reason=reason,
        )
    )


def picked_up(store: Store, receipt: Receipt, reason: str | None, *, tenant: str, partner: str) -> None:
    """Record a file a pickup took (reason None) or failed, with the reason."""
    with store.begin() as conn:
        record(
            conn,
            tenant=tenant,
            partner=partner,
            receipt=receipt,
            cause=None,
            direction="in",
            outcome="taken" if reason is None else "failed",
            reason=reason,
        )


def listing(
    conn: Connection,
    *,
    tenant: str | None = None,
    direction: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page:
    """Files in and out, newest first."""
    query = select(transfers).order_by(transfers.c.id.desc())
    if tenant:
        query = query.where(transfers.c.tenant == tenant)
    if direction:
        query = query.where(transfers.c.direction == direction)
    return page(conn, query, limit=limit, offset=offset)
