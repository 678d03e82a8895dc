"""Files and documents the hub delivered: name, size, SHA-256, time and receiver, for IT operations.

Every transport answers a send with a `Receipt`; `call` wraps a step's sending into a
`PartnerCall` that, once the partner took everything, records each receipt as a transfer and
writes one audit line, in the transaction that settles the step. A flow does neither itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Column, Connection, Index, Integer, String, Table, insert, select

from core import audit
from core.config import Partner
from core.consumer import PartnerCall, StepContext
from core.paging import Page, page
from core.store import utcnow
from core.store.tables import Serial, UtcDateTime, metadata

transfers = Table(
    "transfers",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("tenant", String(4), nullable=False),
    Column("receiver", String(63), nullable=False, doc="the partner id"),
    Column("channel", String(10), nullable=False),
    Column("name", String(200), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("cause", String(64), nullable=True, doc="the envelope whose step sent it"),
    Column("delivered_at", UtcDateTime(), nullable=False),
    Index("transfers_receiver", "tenant", "receiver", "delivered_at"),
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
                record(ctx.conn, tenant=tenant, receiver=partner.id, receipt=receipt, cause=cause)
            audit.record(ctx.conn, actor=f"step:{step}", action=action, tenant=tenant, subject=subject, detail=detail)
        if settle is not None:
            settle(ctx, result)

    return PartnerCall(f"{tenant}/{partner.id}", send, settled)


def record(conn: Connection, *, tenant: str, receiver: str, receipt: Receipt, cause: str | None) -> None:
    conn.execute(
        insert(transfers).values(
            tenant=tenant,
            receiver=receiver,
            channel=receipt.transport,
            name=receipt.name,
            size=receipt.size,
            sha256=receipt.sha256,
            cause=cause,
            delivered_at=utcnow(),
        )
    )


def listing(conn: Connection, *, tenant: str | None = None, limit: int = 100, offset: int = 0) -> Page:
    """Delivered files, newest first."""
    query = select(transfers).order_by(transfers.c.id.desc())
    if tenant:
        query = query.where(transfers.c.tenant == tenant)
    return page(conn, query, limit=limit, offset=offset)
