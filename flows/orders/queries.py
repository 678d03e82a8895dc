"""Reads of the order flow, for the CLI and the console alike. An order's row holds no personal
data of the person ordered for (only references), so these reads are not audited."""

from __future__ import annotations

import json

from sqlalchemy import Connection, select

from core.paging import Page, page
from core.store.tables import messages
from flows.orders.tables import orders

STATES = (  # as in the table's `state` column
    "pending",
    "delivered",
    "accepted",
    "rejected",
    "refused",
    "overdue",
    "withdrawn",
)


def listing(
    conn: Connection, *, tenant: str | None = None, state: str | None = None, limit: int = 100, offset: int = 0
) -> Page:
    """Orders with their latest version and state, the most recently changed first."""
    query = select(orders).order_by(orders.c.updated_at.desc(), orders.c.tenant, orders.c.order_id)
    if state:
        query = query.where(orders.c.state == state)
    if tenant:
        query = query.where(orders.c.tenant == tenant)
    return page(conn, query, limit=limit, offset=offset)


def overdue(conn: Connection, *, tenant: str | None = None, limit: int, offset: int) -> Page:
    """Orders overdue, the longest overdue first: what to chase a provider for (no case reference,
    no contact person)."""
    query = select(
        orders.c.tenant,
        orders.c.order_id,
        orders.c.provider,
        orders.c.delivered_version,
        orders.c.ack_due_at,
        orders.c.reminded_at,
    ).where(orders.c.state == "overdue")
    if tenant:
        query = query.where(orders.c.tenant == tenant)
    query = query.order_by(orders.c.ack_due_at, orders.c.tenant, orders.c.order_id)
    return page(conn, query, limit=limit, offset=offset)


def show(conn: Connection, tenant: str, order_id: str) -> dict | None:
    """One order's row, and the states the case system was told of it, oldest first."""
    row = conn.execute(select(orders).where(orders.c.tenant == tenant, orders.c.order_id == order_id)).first()
    if row is None:
        return None
    told = [
        json.loads(e)["payload"]
        for e in conn.scalars(
            select(messages.c.envelope)
            .where(messages.c.tenant == tenant, messages.c.type == "order.status_changed")
            .order_by(messages.c.stored_at)
        )
    ]
    return {"order": dict(row._mapping), "told": [t for t in told if t["order_id"] == order_id]}
