"""What the order flow still needs of its messages, kept from every purge (core.retention): the
latest version of an order and the one that says what was granted, until the order is cancelled
and its cancellation answered."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, not_, select, union

from core.retention import keeps
from flows.orders.tables import orders

ANSWERED = ("accepted", "rejected", "refused", "withdrawn")


@keeps
def orders_in_force(tenant: str) -> Select[Any]:
    ended = and_(orders.c.kind == "cancel", orders.c.state.in_(ANSWERED))
    live = and_(orders.c.tenant == tenant, not_(ended))
    return union(
        select(orders.c.message_id).where(live),
        select(orders.c.state_message_id).where(live, orders.c.state_message_id.is_not(None)),
    )
