"""`casehub payroll`: the monthly payroll run for foster families, contact families and contact
persons, from draft to the file delivered."""

from __future__ import annotations

import typer

from cli.common import CONFIG, PERSONNUMMER, Reveal, build_hub, err, fail, new_table, open_store, out, period_of, whoami

app = typer.Typer(no_args_is_help=True, help="Fees to foster families and contact persons, paid through payroll")


@app.command("run")
def payroll_run(tenant: str = typer.Option(...), period: str = typer.Option(..., help="YYYY-MM")) -> None:
    """Compute the period's draft: its lines, and the corrections of the paid periods before it."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from core.errors import Rejected
    from flows.payroll import run
    from flows.payroll.configuration import payroll_settings

    hub = build_hub()
    found = hub.config.tenant(tenant)
    if found is None:
        raise fail(f"--tenant: no tenant {tenant} in the configuration", CONFIG)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, disable=not err.is_terminal
    ) as progress:
        task = progress.add_task("assignments: 0")
        try:
            run_id = run.draft(
                hub.store,
                tenant,
                period_of(period),
                payroll_settings(found),
                by=whoami(),
                progress=lambda n: progress.update(task, description=f"assignments: {n:,}"),
            )
        except Rejected as error:
            raise fail(str(error)) from None
    _show(hub.store, run_id)


@app.command("review")
def payroll_review(
    run_id: int,
    recipient: str = typer.Option(None, help="one recipient's personnummer"),
    personnummer: Reveal = PERSONNUMMER,
) -> None:
    """The run's lines per recipient, corrections after the period's own lines, and the totals per
    pay code (the read is audited)."""
    from core.errors import NotAllowed
    from flows.payroll.queries import review
    from schemas.identity import Personnummer

    store, config = open_store()
    try:
        who = Personnummer.parse(recipient).digits if recipient else None
        found = review(store, config, run_id, by=whoami(), recipient=who, reveal=personnummer is Reveal.full)
    except ValueError as error:
        raise fail(f"--recipient: {error}") from None
    except (LookupError, NotAllowed) as error:
        raise fail(str(error)) from None
    table = new_table(
        "recipient",
        "name",
        "assignment",
        "period",
        "pay code",
        "text",
        "from",
        "to",
        "days",
        "price",
        "amount",
        title=f"payroll run {run_id}",
    )
    for line in found:
        table.add_row(
            line["recipient"],
            line["recipient_name"] or "",
            line["assignment_id"],
            line["for_period"],
            line["pay_code"],
            line["text"],
            f"{line['date_from']}",
            f"{line['date_to']}",
            str(line["days"]),
            f"{line['unit_price']:.2f}",
            f"{line['amount']:.2f}",
        )
    out.print(table)
    _show(store, run_id)


@app.command("approve")
def payroll_approve(run_id: int) -> None:
    """Approve (freeze) a draft; the running hub writes its PAXml file and sends it to payroll."""
    from core.errors import Rejected
    from flows.payroll import run

    hub = build_hub()
    try:
        totals = run.approve(hub.store, run_id, by=whoami())
    except (Rejected, LookupError) as error:
        raise fail(str(error)) from None
    for code, total in totals.items():
        out.print(f"run {run_id}: pay code {code} approved, {total:.2f} kr")


@app.command("show")
def payroll_show(run_id: int) -> None:
    """The run: its state, totals per pay code, and its file's deliveries."""
    store, _config = open_store()
    _show(store, run_id)


@app.command("deliver")
def payroll_deliver(run_id: int, tenant: str = typer.Option(...)) -> None:
    """Send an approved run's file again (the same bytes, under the same name)."""
    from core.errors import Rejected
    from flows.payroll import run

    hub = build_hub()
    try:
        run.resend(hub.store, tenant, run_id, by=whoami())
    except (Rejected, LookupError) as error:
        raise fail(str(error)) from None
    hub.relay.nudge()
    out.print(f"run {run_id}: its file goes again")


def _show(store, run_id: int) -> None:
    from flows.payroll.queries import summary

    try:
        found = summary(store, run_id)
    except LookupError as error:
        raise fail(str(error)) from None
    run = found.run
    state = run["status"] + (
        f" by {run['approved_by']} {run['approved_at']:%Y-%m-%d %H:%M}" if run["approved_at"] else ""
    )
    out.print(f"payroll run {run['id']}: {run['tenant']} {run['period']}, {state}")
    table = new_table("pay code", "lines", "amount", title="totals per pay code")
    total = 0
    for row in found.totals:
        kind = " (corrections)" if row["correction"] else ""
        table.add_row(f"{row['pay_code']}{kind}", str(row["lines"]), f"{row['amount']:.2f}")
        total += row["amount"]
    table.add_row("all", str(sum(row["lines"] for row in found.totals)), f"{total:.2f}")
    out.print(table)
    for sent in found.transfers:
        out.print(
            f"delivered {sent['name']} to {sent['partner']} at {sent['at']:%Y-%m-%d %H:%M}, "
            f"{sent['size']:,} bytes, SHA-256 {sent['sha256']}"
        )
