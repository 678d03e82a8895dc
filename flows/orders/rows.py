"""The order's row, as every module of the order flow reads and changes it."""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from core.config import Partner
from core.store import insert_ignore, utcnow
from flows.orders.tables import orders
from schemas.envelope import Envelope
from schemas.orders import Order


def locked(conn: Connection, tenant: str, order_id: str):
    """The order's row, locked until the transaction ends."""
    return conn.execute(
        select(orders).where(orders.c.tenant == tenant, orders.c.order_id == order_id).with_for_update()
    ).one()


def locked_for(conn: Connection, envelope: Envelope, order: Order, partner: Partner):
    """The order's row, created at its first version, locked until the step commits."""
    now = utcnow()
    insert_ignore(
        conn,
        orders,
        {
            "tenant": envelope.tenant,
            "order_id": order.order_id,
            "provider": partner.id,
            "case_ref": order.case_ref,
            "kind": order.kind,
            "version": order.version,
            "message_id": envelope.id,
            "delivered_version": 0,
            "state": "pending",
            "updated_at": now,
        },
    )
    query = select(orders).where(orders.c.tenant == envelope.tenant, orders.c.order_id == order.order_id)
    row = conn.execute(query.with_for_update()).one()
    changed = {}
    if order.version > row.version:
        changed |= {"version": order.version, "kind": order.kind, "message_id": envelope.id, "provider": partner.id}
    if order.services and order.version > (row.state_version or 0):
        changed |= {"state_version": order.version, "state_message_id": envelope.id}
    if changed:
        set_values(conn, envelope.tenant, order.order_id, **changed)
        row = conn.execute(query).one()
    return row


def set_values(conn: Connection, tenant: str, order_id: str, **values) -> None:
    conn.execute(
        update(orders)
        .where(orders.c.tenant == tenant, orders.c.order_id == order_id)
        .values(updated_at=utcnow(), **values)
    )
