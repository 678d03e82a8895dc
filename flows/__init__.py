"""The business flows, one package each, and the echo flow.

`load()` registers every flow's steps and jobs (the bus and the scheduler find them); importing
one module of a flow, its tables say, imports nothing of the other flows.
"""

from __future__ import annotations

import importlib

MODULES = (
    "flows.echo",
    "flows.orders.delivery",
    "flows.orders.acknowledgements",
    "flows.orders.overdue",
    "flows.visits.poll",
    "flows.visits.files",
    "flows.reimbursement.delivery",
)
"""The modules that declare steps and jobs."""


def load() -> None:
    """Import every module that declares a step or a job, so that they are registered."""
    for name in MODULES:
        importlib.import_module(name)


def routes(hub) -> list:
    """The HTTP endpoints of every flow, for `adapters.http_app.create_app`."""
    from flows.orders.routes import routes as order_routes
    from flows.visits.routes import routes as visit_routes

    load()
    return order_routes(hub) + visit_routes(hub)
