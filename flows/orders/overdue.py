"""Orders not acknowledged in time (`orders.overdue`, every minute by default): overdue, the case system told,
the provider reminded, and reminded again once per its reminder interval until it answers."""

from __future__ import annotations

import logging

from sqlalchemy import select

from core import messages
from core.config import Tenant
from core.consumer import CASE_SYSTEM
from core.scheduler import JobContext, scheduled
from core.store import utcnow
from flows.orders import rows
from flows.orders.configuration import order_settings
from flows.orders.tables import orders
from schemas.orders import OrderStatusChanged

log = logging.getLogger(__name__)


@scheduled("orders.overdue")
def flag_overdue(ctx: JobContext, tenant: Tenant) -> int:
    """The tenant's orders delivered and not acknowledged in time: overdue, the case system told,
    the provider reminded; then reminded again once per the provider's reminder interval until it
    answers."""
    now = utcnow()
    with ctx.store.begin() as conn:
        due = conn.execute(
            select(orders)
            .where(orders.c.tenant == tenant.code, orders.c.state == "delivered", orders.c.ack_due_at < now)
            .with_for_update(skip_locked=True)
        ).all()
        for row in due:
            rows.set_values(conn, row.tenant, row.order_id, state="overdue", reminded_at=now)
            status = OrderStatusChanged(
                order_id=row.order_id,
                version=row.delivered_version,
                status="overdue",
                reason=f"not acknowledged by {row.ack_due_at:%Y-%m-%d %H:%M} UTC",
                at=now,
            )
            issued = messages.load(conn, row.message_id)
            messages.send_many(
                conn,
                [
                    (
                        issued.caused("order.status_changed", "casehub/orders", status.model_dump(mode="json")),
                        CASE_SYSTEM,
                    )
                ],
            )
            messages.rerun(conn, row.message_id, "orders.remind", row.tenant)
        still = conn.execute(
            select(orders)
            .where(orders.c.tenant == tenant.code, orders.c.state == "overdue")
            .with_for_update(skip_locked=True)
        ).all()
        again = [
            row
            for row in still
            if (partner := ctx.config.partner(row.tenant, row.provider)) is not None
            and row.reminded_at + order_settings(partner).reminder_interval <= now
        ]
        for row in again:
            rows.set_values(conn, row.tenant, row.order_id, reminded_at=now)
            messages.rerun(conn, row.message_id, "orders.remind", row.tenant)
    if due or again:
        ctx.nudge()
        log.info("%d orders overdue, %d reminded again", len(due), len(again))
    return len(due) + len(again)
