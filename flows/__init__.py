"""The business flows. Importing this package registers every flow's steps and jobs."""
from __future__ import annotations

from flows import echo, orders


def routes(hub) -> list:
    """The HTTP endpoints of every flow, for `adapters.http_app.create_app`."""
    from flows.orders.routes import routes as order_routes

    return order_routes(hub)


__all__ = ["echo", "orders", "routes"]
