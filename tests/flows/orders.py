"""What the order-flow tests share: issuing orders and reading where they stand."""

from __future__ import annotations

import json

from sqlalchemy import select

from core.intake import envelope_from
from core.store.tables import dead_letters, messages
from flows.orders.tables import orders


def issue(hub, *orders_json: dict) -> None:
    hub.accept(
        [(envelope_from(o, hub.config, sender="case_system"), json.dumps(o).encode()) for o in orders_json],
        channel="test",
    )


def row(hub, order_id: str):
    with hub.store.begin() as conn:
        return conn.execute(select(orders).where(orders.c.order_id == order_id)).first()


def first_dead_letter(hub):
    with hub.store.begin() as conn:
        return conn.execute(select(dead_letters)).first()


def statuses(hub, order_id: str) -> list[str]:
    with hub.store.begin() as conn:
        found = [
            json.loads(e)
            for e in conn.scalars(select(messages.c.envelope).where(messages.c.type == "order.status_changed"))
        ]
    return [e["payload"]["status"] for e in found if e["payload"]["order_id"] == order_id]
