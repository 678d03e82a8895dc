"""`casehub reimbursement`: the monthly reimbursement run, from lock to approval."""

from __future__ import annotations

import json
import sys

import typer

from cli.common import (
    CONFIG,
    FORMAT,
    LIMIT,
    OFFSET,
    PERSONNUMMER,
    Format,
    Reveal,
    build_hub,
    err,
    fail,
    new_table,
    open_store,
    out,
    period_of,
    print_csv,
    print_page,
    whoami,
)

app = typer.Typer(no_args_is_help=True, help="The monthly reimbursement run (ersättningskörning)")


@app.command("run")
def reimbursement_run(
    tenant: str = typer.Option(...),
    period: str = typer.Option(..., help="YYYY-MM"),
    processes: int = typer.Option(1, help="split the providers between processes (PostgreSQL)"),
) -> None:
    """Compute the period's run as a draft (a correction run when the period is already approved)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from flows.reimbursement import run as reimbursement

    hub = build_hub()
    rules = _tenant_rules(hub, tenant)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, disable=not err.is_terminal
    ) as progress:
        task = progress.add_task("visits counted: 0")
        run_id = reimbursement.draft(
            hub.store,
            tenant,
            period_of(period),
            rules,
            by=whoami(),
            processes=processes,
            progress=lambda n: progress.update(task, description=f"visits counted: {n:,}"),
        )
    _show_run(hub.store, hub.config, run_id)


@app.command("review")
def reimbursement_review(
    run_id: int,
    provider: str = typer.Option(None, help="organisation number"),
    level: str = typer.Option(
        "low", help="high (not paid), medium (paid less) or low (confirmed by hand), and the levels above"
    ),
    limit: int = LIMIT,
    offset: int = OFFSET,
    format: Format = FORMAT,
    personnummer: Reveal = PERSONNUMMER,
) -> None:
    """Findings by level, provider and code, then the visits themselves, the highest level first."""
    from core.errors import Rejected
    from flows.reimbursement.review import review

    store, config = open_store()
    try:
        found = review(
            store,
            config,
            run_id,
            by=whoami(),
            provider=provider,
            at_least=level,
            limit=limit,
            offset=offset,
            reveal=personnummer is Reveal.full,
        )
    except (Rejected, LookupError) as error:
        raise fail(str(error)) from None
    columns = ["provider_org", "visit_id", "version", "customer", "code", "paid", "paid_minutes"]
    rows = [[finding[name] for name in columns] for finding in found.findings.rows]
    if format is Format.json:
        out.print_json(
            json.dumps(
                {
                    "counts": [
                        dict(zip(("level", "provider_org", "code", "visits"), count, strict=True))
                        for count in found.counts
                    ],
                    "findings": [dict(zip(columns, row, strict=True)) for row in rows],
                    "total": found.findings.total,
                    "offset": found.findings.offset,
                }
            )
        )
        return
    if format is Format.csv:
        print_csv(columns, rows)
        return
    summary = new_table("level", "provider", "code", "visits", title=f"run {run_id}: for review")
    for row in found.counts:
        summary.add_row(*row[:3], str(row[3]))
    out.print(summary)
    detail = new_table("provider", "visit", "version", "customer", "code", "paid minutes")
    for row in rows:
        detail.add_row(row[0], row[1], str(row[2]), row[3], row[4], str(row[6]))
    print_page(detail, found.findings, "findings")


@app.command("adjust")
def reimbursement_adjust(
    run_id: int,
    provider: str = typer.Option(...),
    customer: str = typer.Option(...),
    category: str = typer.Option(...),
    band: str = typer.Option(...),
    rate: str = typer.Option(...),
    minutes: int = typer.Option(..., help="+ adds, - removes"),
    why: str = typer.Option(...),
) -> None:
    """Add or remove minutes on a line of a draft, with the reason (audited, shown on the basis)."""
    from decimal import Decimal, InvalidOperation

    from core.errors import Rejected
    from flows.reimbursement import run as reimbursement
    from schemas.identity import Personnummer

    hub = build_hub()
    try:
        key = (provider, Personnummer.parse(customer).digits, category, band, Decimal(rate))
        reimbursement.adjust(hub.store, run_id, key, minutes, by=whoami(), why=why)
    except (ValueError, InvalidOperation, Rejected, LookupError) as error:
        raise fail(str(error)) from None
    _show_run(hub.store, hub.config, run_id)


@app.command("approve")
def reimbursement_approve(run_id: int) -> None:
    """Approve (freeze) a run; each provider's basis is sent by the running hub."""
    from core.errors import Rejected
    from flows.reimbursement import run as reimbursement

    hub = build_hub()
    try:
        totals = reimbursement.approve(hub.store, run_id, by=whoami())
    except (Rejected, LookupError) as error:
        raise fail(str(error)) from None
    for provider, total in totals.items():
        out.print(f"run {run_id}: {provider} approved, {total:.2f} kr")


@app.command("show")
def reimbursement_show(run_id: int, format: Format = FORMAT, personnummer: Reveal = PERSONNUMMER) -> None:
    """The run's basis: totals per provider and lines per customer, category and band; as CSV (the
    providers' file format, all providers) or JSON for economy and the review group."""
    store, config = open_store()
    _show_run(store, config, run_id, lines=True, format=format, reveal=personnummer is Reveal.full)


@app.command("lock")
def reimbursement_lock(
    tenant: str = typer.Option(...),
    period: str = typer.Option(...),
    at: str = typer.Option(..., help="ISO 8601 with offset, e.g. 2026-04-10T23:59+02:00"),
) -> None:
    """Set the period's lock date (the review group's decision; it overrides the default)."""
    import datetime as dt

    from core.errors import Rejected
    from flows.reimbursement import run as reimbursement

    hub = build_hub()
    try:
        when = dt.datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("give the time with its offset")
        reimbursement.set_lock(hub.store, tenant, period_of(period), when, by=whoami())
    except (ValueError, Rejected) as error:
        raise fail(f"--at: {error}") from None
    out.print(f"{tenant} {period}: lock at {when.isoformat()}")


def _show_run(
    store, config, run_id: int, *, lines: bool = False, format: Format = Format.table, reveal: bool = False
) -> None:
    from adapters.basis_files import basis_csv, basis_json
    from core.errors import Rejected
    from flows.reimbursement.queries import basis
    from schemas.money import STOCKHOLM

    try:
        found = basis(store, config, run_id, by=whoami(), with_lines=lines, reveal=reveal)
    except (LookupError, Rejected) as error:
        raise fail(str(error)) from None
    run = found.run
    if format is Format.json:
        sys.stdout.buffer.write(basis_json(run, found.totals, found.lines))
        return
    if format is Format.csv:
        sys.stdout.buffer.write(basis_csv(run["period"], found.lines))
        return
    out.print(
        f"run {run['id']}: {run['tenant']} {run['period']} {run['kind']}, {run['status']}; "
        f"{run['visits']:,} visits, {run['paid']:,} paid; "
        f"lock {run['lock_at'].astimezone(STOCKHOLM):%Y-%m-%d %H:%M %Z}"
    )
    table = new_table("provider", "lines", "minutes", "amount (kr)", title="basis per provider (VAT category E, 0%)")
    for total in found.totals:
        table.add_row(total["provider_org"], str(total["lines"]), f"{total['minutes']:,}", f"{total['amount']:,.2f}")
    out.print(table)
    if lines:
        detail = new_table("provider", "customer", "category", "band", "rate", "minutes", "adjusted", "amount")
        for line in found.lines:
            detail.add_row(
                line["provider_org"],
                line["customer"],
                line["category"],
                line["band"],
                f"{line['rate']:.2f}",
                str(line["minutes"]),
                f"{line['adjusted_minutes']:+d}" if line["adjusted_minutes"] else "",
                f"{line['amount']:.2f}",
            )
        out.print(detail)


def _tenant_rules(hub, tenant: str):
    found = hub.config.tenant(tenant)
    if found is None:
        raise fail(f"--tenant: no tenant {tenant} in the configuration", CONFIG)
    from flows.reimbursement.configuration import rules_of

    return rules_of(found)
