"""The business flows. Importing this package registers every flow's steps and jobs."""
from __future__ import annotations

from flows import echo, orders, reimbursement, visits
from flows.orders.routes import routes as order_routes
from flows.visits.routes import routes as visit_routes


def routes(hub) -> list:
    """The HTTP endpoints of every flow, for `adapters.http_app.create_app`."""
    return order_routes(hub) + visit_routes(hub)


__all__ = ["echo", "orders", "reimbursement", "routes", "visits"]
