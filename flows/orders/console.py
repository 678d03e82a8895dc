"""The orders overdue in the console: which provider has not acknowledged which order, and since
when, for every role to chase; there is nothing to do on the page."""

from __future__ import annotations

from pathlib import Path as FilePath

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from adapters.console import Console
from adapters.console.console import MAX_ID
from flows.orders import queries


def add(console: Console) -> None:
    """Add the overdue orders' page to the console."""
    pages = APIRouter(prefix="/console/orders", include_in_schema=False)
    hub = console.hub

    @pages.get("/overdue", response_class=HTMLResponse)
    def overdue_list(
        request: Request,
        tenant: str = Query("", pattern="^([0-9]{4})?$"),
        offset: int = Query(0, ge=0, le=MAX_ID),
    ) -> Response:
        session, user = console.who(request)
        with hub.store.begin() as conn:
            found = queries.overdue(conn, tenant=tenant or None, limit=50, offset=offset)
        return console.render(request, "orders_overdue.html", session, user, page=found, tenant=tenant)

    console.add(
        pages,
        templates=FilePath(__file__).parent / "templates",
        menu=[("Orders overdue", "/console/orders/overdue")],
    )
