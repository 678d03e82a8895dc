"""The `casehub` command: parses arguments and calls into the hub, as the console will. Exit codes:
0 done, 1 failed or not found, 2 wrong usage, 3 configuration is wrong.

One module per group of commands: `running` (serve, worker, demo, db, config, schemas),
`operations` (dead letters, messages, transfers, audit, schedules, users), `retention`, and one
per flow.
"""

from __future__ import annotations

import typer

from cli import migration, operations, orders, payroll, reimbursement, retention, running, visits
from cli.running import http_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="casehub, the social-services integration hub")
app.registered_commands += running.app.registered_commands
for group, name in [
    (operations.dead_letters, "dead-letters"),
    (operations.messages, "messages"),
    (running.config, "config"),
    (running.schemas, "schemas"),
    (running.db, "db"),
    (orders.app, "orders"),
    (reimbursement.app, "reimbursement"),
    (payroll.app, "payroll"),
    (migration.app, "migrate"),
    (operations.transfers, "transfers"),
    (operations.audit, "audit"),
    (operations.schedules, "schedules"),
    (operations.users, "users"),
    (visits.app, "visits"),
    (retention.app, "retention"),
]:
    app.add_typer(group, name=name)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="the libraries' INFO lines too")) -> None:
    """casehub, the social-services integration hub."""
    from core import logs

    logs.install(verbose=verbose)


__all__ = ["app", "http_app"]
