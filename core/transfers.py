"""Files the hub delivered: name, size, SHA-256, time and receiver, for IT operations to see.

The reimbursement basis to providers is the first user; the economy and payroll files follow.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Column, Connection, Index, Integer, String, Table, insert, select

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


def record(
    conn: Connection, *, tenant: str, receiver: str, channel: str, name: str, data: bytes, cause: str | None
) -> None:
    conn.execute(
        insert(transfers).values(
            tenant=tenant,
            receiver=receiver,
            channel=channel,
            name=name,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
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
