"""The `casehub` command: parses arguments and calls into the hub. Exit codes: 0 done,
1 failed or not found, 2 wrong usage, 3 configuration is wrong."""
from __future__ import annotations

import csv
import getpass
import json
import signal
import sys
import threading
import time
from enum import Enum
from pathlib import Path
from types import SimpleNamespace

import typer
from rich import box
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, add_completion=False, help="casehub, the social-services integration hub")
dead_letters_app = typer.Typer(no_args_is_help=True, help="Failures kept for a person to see and replay")
messages_app = typer.Typer(no_args_is_help=True, help="Stored envelopes")
config_app = typer.Typer(no_args_is_help=True, help="The tenant and partner configuration")
schemas_app = typer.Typer(no_args_is_help=True, help="The canonical model")
db_app = typer.Typer(no_args_is_help=True, help="The store's schema")
orders_app = typer.Typer(no_args_is_help=True, help="Orders to LOV providers and where they stand")
reimbursement_app = typer.Typer(no_args_is_help=True, help="The monthly reimbursement run (ersättningskörning)")
transfers_app = typer.Typer(no_args_is_help=True, help="Files the hub delivered")
audit_app = typer.Typer(no_args_is_help=True, help="Who read or sent whose data, and when")
visits_app = typer.Typer(no_args_is_help=True, help="Visits from the mobile-reporting vendors: intake and rounds")
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(messages_app, name="messages")
app.add_typer(config_app, name="config")
app.add_typer(schemas_app, name="schemas")
app.add_typer(db_app, name="db")
app.add_typer(orders_app, name="orders")
app.add_typer(reimbursement_app, name="reimbursement")
app.add_typer(transfers_app, name="transfers")
app.add_typer(audit_app, name="audit")
app.add_typer(visits_app, name="visits")

# piped into a file or grep, tables stay one line a row, plain (no box drawing, no colour)
out = Console() if sys.stdout.isatty() else Console(width=240)
err = Console(stderr=True, width=240)
FAILED, CONFIG = 1, 3


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class Reveal(str, Enum):
    """How a listing shows personnummer."""

    masked = "masked"
    full = "full"


FORMAT = typer.Option(Format.table, help="table (to read), csv or json (to compare or load)")
PERSONNUMMER = typer.Option(Reveal.masked, help="full only for the tenant's personal_data_readers (audited)")


def new_table(*columns: str, title: str | None = None) -> Table:
    """A table: drawn with boxes on a terminal, plain aligned columns when piped."""
    return Table(*columns, title=title, box=box.HEAVY_HEAD if out.is_terminal else None)


def fail(message: str, code: int = FAILED) -> typer.Exit:
    err.print(f"casehub: {message}", markup=False, highlight=False)
    return typer.Exit(code)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="the libraries' INFO lines too")) -> None:
    """casehub, the social-services integration hub."""
    from core import logs

    logs.install(verbose=verbose)


def build_hub():
    """The hub of this process, with every flow registered; exits 3 on a bad configuration."""
    import flows
    from core import logs
    from core.config import ConfigError
    from core.runtime import Hub

    logs.install()
    flows.load()
    try:
        return Hub()
    except ConfigError as error:
        raise fail(str(error), CONFIG) from None


def whoami() -> str:
    return f"user:{getpass.getuser()}"


LIMIT = typer.Option(100, min=1, help="rows to show")
OFFSET = typer.Option(0, min=0, help="rows to skip (the next page starts at the offset printed below a page)")


def print_page(table: Table, page, what: str) -> None:
    """A page of a listing, and below it how many there are in all and how to see the next page."""
    out.print(table)
    if not page.rows:
        out.print(f"no {what} from offset {page.offset}, {page.total} in all")
        return
    line = f"{what} {page.offset + 1}-{page.offset + len(page.rows)} of {page.total}"
    if page.more:
        line += f"; {page.more} more: --offset {page.offset + len(page.rows)}"
    out.print(line)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, migrate: bool = True,
          processes: int = typer.Option(1, help="HTTP processes on this machine (needs amqp://)")) -> None:
    """Run the inbound HTTP app with an outbox relay and the scheduler; with amqp://, the AMQP inbound
    consumer too; on the in-process broker (memory://), the workers as well."""
    import uvicorn
    from sqlalchemy.engine import make_url

    hub = build_hub()
    if migrate:
        hub.store.migrate()
    if processes > 1 and hub.bus.in_process:
        raise fail("--processes > 1 needs a shared broker (CASEHUB_BROKER_URL=amqp://...)", 2)
    def shown(url: str) -> str:
        return make_url(url).render_as_string(hide_password=True)

    broker = "in process" if hub.bus.in_process else shown(hub.settings.broker_url)
    where = f"store {shown(hub.settings.database_url)}, broker {broker}"
    hub.stop()
    err.print(f"casehub serve: listening on http://{host}:{port} ({processes} process{'es' if processes > 1 else ''}; "
              f"{where}; configuration {hub.settings.config})")
    # log_config=None: uvicorn's loggers write through the root logger's redacting handlers
    options = {"host": host, "port": port, "log_level": "warning", "access_log": False, "log_config": None}
    if processes == 1:
        uvicorn.run(http_app(), **options)
    else:
        uvicorn.run("cli:http_app", factory=True, workers=processes, **options)


def http_app():
    """The HTTP app of one serving process, with its hub; the hub stops when the app shuts down."""
    import flows
    from adapters.amqp import EventConsumer
    from adapters.http_app import create_app

    hub = build_hub()
    hub.start(worker=hub.bus.in_process, scheduler=True)
    consumer = None if hub.bus.in_process else EventConsumer(hub)
    if consumer is not None:
        consumer.start()
    application = create_app(hub, flows.routes(hub))

    @application.on_event("shutdown")
    def stop() -> None:
        if consumer is not None:
            consumer.stop()
        hub.stop()

    return application


@app.command()
def worker(threads: int = typer.Option(None, help="worker threads (default CASEHUB_WORKER_THREADS)")) -> None:
    """Run the steps of every flow, and an outbox relay, until SIGTERM or SIGINT."""
    hub = build_hub()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    delay = 0.5
    while not hub.bus.reachable() and not stop.is_set():  # the broker may be down at start-up: wait for it
        err.print(f"casehub: the broker is not reachable; trying again in {delay:.1f} s")
        stop.wait(delay)
        delay = min(delay * 2, 30)
    if not stop.is_set():
        hub.start(worker=True, threads=threads)
        stop.wait()
    hub.stop()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the store's tables to the newest migration."""
    hub = build_hub()
    hub.store.migrate()
    out.print("store is up to date")


@dead_letters_app.command("list")
def dead_letters_list(all: bool = typer.Option(False, "--all", help="also replayed ones"), limit: int = LIMIT,
                      offset: int = OFFSET) -> None:
    """List dead letters, newest first: id, step, kind, the first line of the reason."""
    from core import deadletters

    hub = build_hub()
    with hub.store.begin() as conn:
        page = deadletters.listing(conn, status=None if all else "open", limit=limit, offset=offset)
    table = new_table("id", "failed at", "tenant", "step", "kind", "status", "message", "reason")
    for row in page.rows:
        reason = row["reason"].splitlines()
        more = f" (and {len(reason) - 1} lines more: dead-letters show {row['id']})" if len(reason) > 1 else ""
        table.add_row(str(row["id"]), f"{row['failed_at']:%Y-%m-%d %H:%M:%S}", row["tenant"] or "", row["step"],
                      row["kind"], row["status"], row["message_id"] or "", reason[0][:200] + more)
    print_page(table, page, "dead letters")


@dead_letters_app.command("show")
def dead_letters_show(letter_id: int) -> None:
    """Show one dead letter whole, with the input it kept."""
    from core import deadletters

    hub = build_hub()
    with hub.store.begin() as conn:
        letter = deadletters.read(conn, letter_id, by=whoami())
    if letter is None:
        raise fail(f"dead letter {letter_id} does not exist")
    raw = letter.pop("raw")
    out.print_json(json.dumps({k: str(v) if v is not None else None for k, v in letter.items()}))
    if raw:
        out.print(raw.decode("utf-8", errors="replace"), markup=False, highlight=False)


@dead_letters_app.command("replay")
def dead_letters_replay(letter_ids: list[int]) -> None:
    """Send dead letters through their step again, after the cause is fixed."""
    from core.errors import Rejected

    hub = build_hub()
    failed = False
    for letter_id in letter_ids:
        try:
            envelope_id = hub.replay(letter_id, by=whoami())
            out.print(f"dead letter {letter_id}: envelope {envelope_id} sent again")
        except (LookupError, Rejected) as error:
            err.print(f"casehub: dead letter {letter_id}: {error}", markup=False)
            failed = True
    # the running hub's relay sends it on: on the in-process broker only that process has a worker
    if failed:
        raise typer.Exit(FAILED)


@messages_app.command("show")
def messages_show(envelope_id: str) -> None:
    """Show a stored envelope (personal data: the read is audited)."""
    from core import messages

    hub = build_hub()
    with hub.store.begin() as conn:
        envelope = messages.read(conn, envelope_id, by=whoami())
    if envelope is None:
        raise fail(f"no message {envelope_id}")
    out.print_json(envelope.model_dump_json())


@messages_app.command("search")
def messages_search(tenant: str = None, type: str = None, limit: int = LIMIT, offset: int = OFFSET) -> None:
    """List stored envelopes, newest first (no payloads)."""
    from core import messages

    hub = build_hub()
    with hub.store.begin() as conn:
        page = messages.search(conn, tenant=tenant, type=type, limit=limit, offset=offset)
    table = new_table("stored at", "id", "tenant", "type", "source", "direction")
    for row in page.rows:
        table.add_row(f"{row['stored_at']:%Y-%m-%d %H:%M:%S}", row["id"], row["tenant"], row["type"],
                      row["source"], row["direction"])
    print_page(table, page, "messages")


@config_app.command("check")
def config_check(file: Path) -> None:
    """Validate a configuration file; prints each problem with its place and exits 3 if any."""
    from core import config

    problems = config.check(file)
    for problem in problems:
        err.print(f"{file}: {problem}", markup=False, highlight=False)
    if problems:
        raise typer.Exit(CONFIG)
    out.print(f"{file}: ok")


@schemas_app.command("export")
def schemas_export(directory: Path) -> None:
    """Write the JSON Schema of the envelope and of every canonical document to DIRECTORY."""
    from schemas.documents import json_schemas

    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (directory / f"{name}.schema.json").write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
        out.print(f"wrote {directory / f'{name}.schema.json'}")


@orders_app.command("list")
def orders_list(state: str = typer.Option(None, help="pending, delivered, accepted, rejected, refused, overdue, "
                                                     "withdrawn"),
                tenant: str = None, limit: int = LIMIT, offset: int = OFFSET) -> None:
    """Orders with their latest version and state, newest change first."""
    from flows.orders import queries

    hub = build_hub()
    with hub.store.begin() as conn:
        page = queries.listing(conn, tenant=tenant, state=state, limit=limit, offset=offset)
    table = new_table("tenant", "order", "provider", "version", "delivered", "state", "acknowledge by", "reason")
    for row in (SimpleNamespace(**found) for found in page.rows):
        due = f"{row.ack_due_at:%Y-%m-%d %H:%M}" if row.ack_due_at and row.state in ("delivered", "overdue") else ""
        table.add_row(row.tenant, row.order_id, row.provider, str(row.version), str(row.delivered_version),
                      row.state, due, row.reason or "")
    print_page(table, page, "orders")


@orders_app.command("show")
def orders_show(order_id: str, tenant: str = typer.Option(..., help="the kommunkod")) -> None:
    """One order's state, and each state the case system was told of it."""
    from flows.orders import queries

    hub = build_hub()
    with hub.store.begin() as conn:
        found = queries.show(conn, tenant, order_id)
    if found is None:
        raise fail(f"no order {order_id} in tenant {tenant}")
    out.print_json(json.dumps(found["order"], default=lambda value: value.isoformat()))
    table = new_table("at", "version", "state", "reason", title="states the case system was told")
    for told in found["told"]:
        table.add_row(told["at"], str(told["version"]), told["status"], told.get("reason") or "")
    out.print(table)


@orders_app.command("resend")
def orders_resend(order_id: str, tenant: str = typer.Option(..., help="the kommunkod")) -> None:
    """Deliver an order's latest version again (the running hub's relay sends it)."""
    from flows.orders.delivery import resend

    hub = build_hub()
    try:
        how = resend(hub.store, tenant, order_id, by=whoami())
    except LookupError as error:
        raise fail(str(error)) from None
    out.print(f"order {order_id}: queued for {how}")


def _period(text: str):
    from schemas.money import Period

    try:
        return Period.parse(text)
    except ValueError as error:
        raise fail(f"--period: {error}", 2) from None


def _tenant_rules(hub, tenant: str):
    found = hub.config.tenant(tenant)
    if found is None:
        raise fail(f"--tenant: no tenant {tenant} in the configuration", CONFIG)
    return found.reimbursement


@visits_app.command("status")
def visits_status(tenant: str = typer.Option(...), period: str = typer.Option(..., help="YYYY-MM")) -> None:
    """Per vendor: versions stored that start in the period, the last batch and poll, rejects."""
    from flows.visits.queries import status

    hub = build_hub()
    try:
        vendors = status(hub.store, hub.config, tenant, _period(period))
    except LookupError as error:
        raise fail(f"--tenant: {error}", CONFIG) from None
    table = new_table("vendor", "channels", "versions", "visits", "last batch", "last poll", "rejected",
                      "open dead letters", title=f"{tenant} {period}: visits stored")
    for vendor in vendors:
        table.add_row(vendor.vendor, ",".join(vendor.channels), f"{vendor.versions:,}", f"{vendor.visits:,}",
                      _local(vendor.last_batch_at), _local(vendor.last_poll_at), str(vendor.rejected),
                      str(vendor.open_dead_letters))
    out.print(table)


@visits_app.command("poll")
def visits_poll(tenant: str = typer.Option(...), vendor: str = typer.Option(...)) -> None:
    """Poll a vendor's API now, from the stored cursor on, instead of waiting for the minute."""
    from core.config import RestChannel
    from core.errors import Misconfigured, Rejected, Transient
    from flows.visits.poll import poll

    hub = build_hub()
    partner = _vendor(hub, tenant, vendor, RestChannel, "rest channel to poll")
    try:
        stored = poll(hub.jobs, tenant, partner)
    except Misconfigured as error:
        raise fail(f"{vendor}: {error}", CONFIG) from None
    except (Transient, Rejected) as error:
        raise fail(f"{vendor}: {error}") from None
    out.print(f"{vendor}: {stored:,} visit versions stored")


@visits_app.command("pickup")
def visits_pickup(tenant: str = typer.Option(...), vendor: str = typer.Option(...)) -> None:
    """Pick up a vendor's ready files now, instead of waiting for the minute."""
    from core.config import SftpChannel
    from core.errors import Misconfigured, Rejected, Transient
    from flows.visits.files import pick_up_files

    hub = build_hub()
    partner = _vendor(hub, tenant, vendor, SftpChannel, "sftp channel to pick up files from")
    try:
        archived, failed = pick_up_files(hub.jobs, tenant, partner)
    except Misconfigured as error:
        raise fail(f"{vendor}: {error}", CONFIG) from None
    except (Transient, Rejected) as error:
        raise fail(f"{vendor}: {error}") from None
    out.print(f"{vendor}: {archived} files stored and archived, {failed} failed (see dead-letters list)")
    if failed:
        raise typer.Exit(FAILED)


def _vendor(hub, tenant: str, vendor: str, channel: type, needs: str):
    partner = hub.config.partner(tenant, vendor)
    if partner is None or partner.kind != "visit_vendor":
        raise fail(f"--vendor: no visit vendor {vendor} in tenant {tenant}", CONFIG)
    if not isinstance(partner.channel, channel):
        raise fail(f"--vendor: {vendor} has no {needs}", CONFIG)
    return partner


def _local(when) -> str:
    from schemas.money import STOCKHOLM

    return f"{when.astimezone(STOCKHOLM):%Y-%m-%d %H:%M}" if when else ""


@reimbursement_app.command("run")
def reimbursement_run(tenant: str = typer.Option(...), period: str = typer.Option(..., help="YYYY-MM"),
                      processes: int = typer.Option(1, help="split the providers between processes (PostgreSQL)")
                      ) -> None:
    """Compute the period's run as a draft (a correction run when the period is already approved)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from flows.reimbursement import run as reimbursement

    hub = build_hub()
    rules = _tenant_rules(hub, tenant)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                  disable=not err.is_terminal) as progress:
        task = progress.add_task("visits counted: 0")
        run_id = reimbursement.draft(hub.store, tenant, _period(period), rules, by=whoami(), processes=processes,
                                     progress=lambda n: progress.update(task, description=f"visits counted: {n:,}"))
    _show_run(hub, run_id)


@reimbursement_app.command("review")
def reimbursement_review(run_id: int, provider: str = typer.Option(None, help="organisation number"),
                         level: str = typer.Option("low", help="high (not paid), medium (paid less) or low "
                                                               "(confirmed by hand), and the levels above"),
                         limit: int = LIMIT, offset: int = OFFSET, format: Format = FORMAT,
                         personnummer: Reveal = PERSONNUMMER) -> None:
    """Findings by level, provider and code, then the visits themselves, the highest level first."""
    from core.errors import Rejected
    from flows.reimbursement.review import review

    hub = build_hub()
    try:
        found = review(hub.store, hub.config, run_id, by=whoami(), provider=provider, at_least=level, limit=limit,
                       offset=offset, reveal=personnummer is Reveal.full)
    except (Rejected, LookupError) as error:
        raise fail(str(error)) from None
    columns = ["provider_org", "visit_id", "version", "customer", "code", "paid", "paid_minutes"]
    rows = [[finding[name] for name in columns] for finding in found.findings.rows]
    if format is Format.json:
        out.print_json(json.dumps({"counts": [dict(zip(("level", "provider_org", "code", "visits"), count))
                                              for count in found.counts],
                                   "findings": [dict(zip(columns, row)) for row in rows],
                                   "total": found.findings.total, "offset": found.findings.offset}))
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


@reimbursement_app.command("adjust")
def reimbursement_adjust(run_id: int, provider: str = typer.Option(...), customer: str = typer.Option(...),
                         category: str = typer.Option(...), band: str = typer.Option(...),
                         rate: str = typer.Option(...), minutes: int = typer.Option(..., help="+ adds, - removes"),
                         why: str = typer.Option(...)) -> None:
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
    _show_run(hub, run_id)


@reimbursement_app.command("approve")
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


@reimbursement_app.command("show")
def reimbursement_show(run_id: int, format: Format = FORMAT, personnummer: Reveal = PERSONNUMMER) -> None:
    """The run's basis: totals per provider and lines per customer, category and band; as CSV (the
    providers' file format, all providers) or JSON for economy and the review group."""
    hub = build_hub()
    _show_run(hub, run_id, lines=True, format=format, reveal=personnummer is Reveal.full)


@reimbursement_app.command("lock")
def reimbursement_lock(tenant: str = typer.Option(...), period: str = typer.Option(...),
                       at: str = typer.Option(..., help="ISO 8601 with offset, e.g. 2026-04-10T23:59+02:00")) -> None:
    """Set the period's lock date (the review group's decision; it overrides the default)."""
    import datetime as dt

    from core.errors import Rejected
    from flows.reimbursement import run as reimbursement

    hub = build_hub()
    try:
        when = dt.datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("give the time with its offset")
        reimbursement.set_lock(hub.store, tenant, _period(period), when, by=whoami())
    except (ValueError, Rejected) as error:
        raise fail(f"--at: {error}") from None
    out.print(f"{tenant} {period}: lock at {when.isoformat()}")


def _show_run(hub, run_id: int, *, lines: bool = False, format: Format = Format.table, reveal: bool = False) -> None:
    from adapters.basis_files import basis_csv, basis_json
    from core.errors import Rejected
    from flows.reimbursement.queries import basis
    from schemas.money import STOCKHOLM

    try:
        found = basis(hub.store, hub.config, run_id, by=whoami(), with_lines=lines, reveal=reveal)
    except (LookupError, Rejected) as error:
        raise fail(str(error)) from None
    run = found.run
    if format is Format.json:
        sys.stdout.buffer.write(basis_json(run, found.totals, found.lines))
        return
    if format is Format.csv:
        sys.stdout.buffer.write(basis_csv(run["period"], found.lines))
        return
    out.print(f"run {run['id']}: {run['tenant']} {run['period']} {run['kind']}, {run['status']}; "
              f"{run['visits']:,} visits, {run['paid']:,} paid; "
              f"lock {run['lock_at'].astimezone(STOCKHOLM):%Y-%m-%d %H:%M %Z}")
    table = new_table("provider", "lines", "minutes", "amount (kr)", title="basis per provider (VAT category E, 0%)")
    for total in found.totals:
        table.add_row(total["provider_org"], str(total["lines"]), f"{total['minutes']:,}", f"{total['amount']:,.2f}")
    out.print(table)
    if lines:
        detail = new_table("provider", "customer", "category", "band", "rate", "minutes", "adjusted", "amount")
        for line in found.lines:
            detail.add_row(line["provider_org"], line["customer"], line["category"], line["band"],
                           f"{line['rate']:.2f}", str(line["minutes"]),
                           f"{line['adjusted_minutes']:+d}" if line["adjusted_minutes"] else "",
                           f"{line['amount']:.2f}")
        out.print(detail)


def print_csv(columns: list[str], rows: list[list]) -> None:
    """Rows as `;`-separated CSV on standard output, as the hub's files are written."""
    writer = csv.writer(sys.stdout, delimiter=";", lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)


@transfers_app.command("list")
def transfers_list(tenant: str = None, wide: bool = typer.Option(False, "--wide", help="the whole SHA-256"),
                   limit: int = LIMIT, offset: int = OFFSET) -> None:
    """Delivered files, newest first: when, to whom, name, size and SHA-256 (its first 16 digits
    unless --wide)."""
    from core import transfers

    hub = build_hub()
    with hub.store.begin() as conn:
        page = transfers.listing(conn, tenant=tenant, limit=limit, offset=offset)
    table = new_table("delivered", "tenant", "receiver", "channel", "name", "bytes", "sha256")
    for row in page.rows:
        table.add_row(f"{row['delivered_at']:%Y-%m-%d %H:%M:%S}", row["tenant"], row["receiver"], row["channel"],
                      row["name"], str(row["size"]), row["sha256"] if wide else row["sha256"][:16])
    print_page(table, page, "transfers")


@audit_app.command("list")
def audit_list(subject: str = typer.Option(None, help="e.g. message:ID, order:ID, run:ID"), limit: int = LIMIT,
               offset: int = OFFSET) -> None:
    """The audit log, newest first (reading it is itself audited: the log is personal data)."""
    from core import audit

    hub = build_hub()
    with hub.store.begin() as conn:
        page = audit.entries(conn, by=whoami(), limit=limit, offset=offset, subject=subject)
    table = new_table("at", "tenant", "who", "what", "whose", "detail")
    for row in page.rows:
        table.add_row(f"{row['at']:%Y-%m-%d %H:%M:%S}", row["tenant"] or "", row["actor"], row["action"],
                      row["subject"] or "", row["detail"] or "")
    print_page(table, page, "audit entries")


@app.command()
def demo(events: int = 200, workdir: Path = Path("var/demo")) -> None:
    """Run the hub end to end on the embedded default with simulated partners, and print a summary."""
    from sandbox.demo import run

    started = time.monotonic()
    ok = run(workdir=workdir, events=events, console=out)
    out.print(f"demo finished in {time.monotonic() - started:.1f} s; to look around with the CLI:\n"
              f"  export CASEHUB_CONFIG={workdir}/casehub.toml CASEHUB_DATABASE_URL=sqlite:///{workdir}/casehub.db\n"
              f"  casehub orders list; casehub dead-letters list; casehub transfers list")
    if not ok:
        raise typer.Exit(FAILED)


if __name__ == "__main__":
    app()
