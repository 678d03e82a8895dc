"""The business flows, one package each, and the echo flow.

`load()` registers every flow's steps, jobs and configuration sections (the bus, the scheduler
and `config check` find them); importing one module of a flow, its tables say, imports nothing of
the other flows.
"""

from __future__ import annotations

import importlib

MODULES = (
    "core.retention",
    "flows.echo",
    "flows.orders.configuration",
    "flows.orders.delivery",
    "flows.orders.acknowledgements",
    "flows.orders.overdue",
    "flows.orders.retention",
    "flows.visits.poll",
    "flows.visits.files",
    "flows.reimbursement.configuration",
    "flows.reimbursement.retention",
    "flows.payroll.configuration",
    "flows.payroll.intake",
    "flows.payroll.delivery",
    "flows.migration.run",
    "flows.reimbursement.delivery",
)
"""The modules that declare steps, jobs and configuration sections (core's retention among them:
its section and its nightly job)."""


def load() -> None:
    """Import every module that declares a step, a job or a section, so that they are registered."""
    for name in MODULES:
        importlib.import_module(name)


def routes(hub) -> list:
    """The HTTP endpoints of every flow, for `adapters.http_app.create_app`."""
    from flows.orders.routes import routes as order_routes
    from flows.visits.routes import routes as visit_routes

    load()
    return order_routes(hub) + visit_routes(hub)


def console_pages(console) -> None:
    """Add every flow's pages to the console (`adapters.console.install` gives it)."""
    from flows.orders.console import add as add_orders
    from flows.payroll.console import add as add_payroll
    from flows.reimbursement.console import add as add_reimbursement

    load()
    add_orders(console)
    add_payroll(console)
    add_reimbursement(console)
