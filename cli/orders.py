"""`casehub orders`: orders to LOV providers and where they stand."""

from __future__ import annotations

import json
from types import SimpleNamespace

import typer

from cli.common import LIMIT, OFFSET, build_hub, fail, new_table, open_store, out, print_page, whoami
from flows.orders.queries import STATES

app = typer.Typer(no_args_is_help=True, help="Orders to LOV providers and where they stand")


@app.command("list")
def orders_list(
    state: str = typer.Option(None, help=", ".join(STATES)),
    tenant: str = None,
    limit: int = LIMIT,
    offset: int = OFFSET,
) -> None:
    """Orders with their latest version and state, newest change first."""
    from flows.orders import queries

    store, config = open_store()
    with store.begin() as conn:
        page = queries.listing(conn, tenant=tenant, state=state, limit=limit, offset=offset)
    table = new_table("tenant", "order", "provider", "version", "delivered", "state", "acknowledge by", "reason")
    for row in (SimpleNamespace(**found) for found in page.rows):
        due = f"{row.ack_due_at:%Y-%m-%d %H:%M}" if row.ack_due_at and row.state in ("delivered", "overdue") else ""
        table.add_row(
            row.tenant,
            row.order_id,
            row.provider,
            str(row.version),
            str(row.delivered_version),
            row.state,
            due,
            row.reason or "",
        )
    print_page(table, page, "orders")


@app.command("show")
def orders_show(order_id: str, tenant: str = typer.Option(..., help="the kommunkod")) -> None:
    """One order's state, and each state the case system was told of it."""
    from flows.orders import queries

    store, config = open_store()
    with store.begin() as conn:
        found = queries.show(conn, tenant, order_id)
    if found is None:
        raise fail(f"no order {order_id} in tenant {tenant}")
    out.print_json(json.dumps(found["order"], default=lambda value: value.isoformat()))
    table = new_table("at", "version", "state", "reason", title="states the case system was told")
    for told in found["told"]:
        table.add_row(told["at"], str(told["version"]), told["status"], told.get("reason") or "")
    out.print(table)


@app.command("resend")
def orders_resend(order_id: str, tenant: str = typer.Option(..., help="the kommunkod")) -> None:
    """Deliver an order's latest version again (the running hub's relay sends it)."""
    from core.errors import Rejected
    from flows.orders.delivery import resend

    hub = build_hub()
    try:
        how = resend(hub.store, tenant, order_id, by=whoami())
    except (Rejected, LookupError) as error:
        raise fail(str(error)) from None
    out.print(f"order {order_id}: queued for {how}")
