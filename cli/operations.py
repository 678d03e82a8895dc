"""What IT operations looks at and mends: dead letters, stored messages, transfers, the audit log,
the jobs' schedules, and the console's users."""

from __future__ import annotations

import json

import typer

from cli.common import FAILED, LIMIT, OFFSET, build_hub, err, fail, new_table, open_store, out, print_page, whoami

dead_letters = typer.Typer(no_args_is_help=True, help="Failures kept for a person to see and replay")
messages = typer.Typer(no_args_is_help=True, help="Stored envelopes")
transfers = typer.Typer(no_args_is_help=True, help="Files the hub delivered and picked up")
audit = typer.Typer(no_args_is_help=True, help="Who read or sent whose data, and when")


@dead_letters.command("list")
def dead_letters_list(
    all: bool = typer.Option(False, "--all", help="also replayed ones"), limit: int = LIMIT, offset: int = OFFSET
) -> None:
    """List dead letters, newest first: id, step, kind, the first line of the reason."""
    from core import deadletters

    store, config = open_store()
    with store.begin() as conn:
        page = deadletters.listing(conn, status=None if all else "open", limit=limit, offset=offset)
    table = new_table("id", "failed at", "tenant", "step", "kind", "status", "message", "reason")
    for row in page.rows:
        reason = row["reason"].splitlines()
        more = f" (and {len(reason) - 1} lines more: dead-letters show {row['id']})" if len(reason) > 1 else ""
        table.add_row(
            str(row["id"]),
            f"{row['failed_at']:%Y-%m-%d %H:%M:%S}",
            row["tenant"] or "",
            row["step"],
            row["kind"],
            row["status"],
            row["message_id"] or "",
            reason[0][:200] + more,
        )
    print_page(table, page, "dead letters")


@dead_letters.command("show")
def dead_letters_show(letter_id: int) -> None:
    """Show one dead letter whole, with the input it kept."""
    from core import deadletters

    store, config = open_store()
    with store.begin() as conn:
        letter = deadletters.read(conn, letter_id, by=whoami())
    if letter is None:
        raise fail(f"dead letter {letter_id} does not exist")
    raw = letter.pop("raw")
    out.print_json(json.dumps({k: str(v) if v is not None else None for k, v in letter.items()}))
    if raw:
        out.print(raw.decode("utf-8", errors="replace"), markup=False, highlight=False)


@dead_letters.command("replay")
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


@messages.command("show")
def messages_show(envelope_id: str) -> None:
    """Show a stored envelope (personal data: the read is audited)."""
    from core import messages

    store, config = open_store()
    with store.begin() as conn:
        envelope = messages.read(conn, envelope_id, by=whoami())
    if envelope is None:
        raise fail(f"no message {envelope_id}")
    out.print_json(envelope.model_dump_json())


@messages.command("search")
def messages_search(tenant: str = None, type: str = None, limit: int = LIMIT, offset: int = OFFSET) -> None:
    """List stored envelopes, newest first (no payloads)."""
    from core import messages

    store, config = open_store()
    with store.begin() as conn:
        page = messages.search(conn, tenant=tenant, type=type, limit=limit, offset=offset)
    table = new_table("stored at", "id", "tenant", "type", "source", "direction")
    for row in page.rows:
        table.add_row(
            f"{row['stored_at']:%Y-%m-%d %H:%M:%S}",
            row["id"],
            row["tenant"],
            row["type"],
            row["source"],
            row["direction"],
        )
    print_page(table, page, "messages")


@transfers.command("list")
def transfers_list(
    tenant: str = None,
    direction: str = typer.Option(None, help="`in` (picked up) or `out` (delivered); both when not given"),
    wide: bool = typer.Option(False, "--wide", help="the whole SHA-256"),
    limit: int = LIMIT,
    offset: int = OFFSET,
) -> None:
    """Files delivered and picked up, newest first: when, which way, which partner, name, size,
    SHA-256 (its first 16 digits unless --wide) and outcome."""
    from core import transfers

    store, config = open_store()
    with store.begin() as conn:
        page = transfers.listing(conn, tenant=tenant, direction=direction, limit=limit, offset=offset)
    table = new_table("at", "way", "tenant", "partner", "channel", "name", "bytes", "sha256", "outcome")
    for row in page.rows:
        table.add_row(
            f"{row['at']:%Y-%m-%d %H:%M:%S}",
            row["direction"],
            row["tenant"],
            row["partner"],
            row["channel"],
            row["name"],
            str(row["size"]),
            row["sha256"] if wide else row["sha256"][:16],
            row["outcome"] if row["reason"] is None else f"{row['outcome']}: {row['reason']}",
        )
    print_page(table, page, "transfers")


@audit.command("list")
def audit_list(
    subject: str = typer.Option(None, help="e.g. message:ID, order:ID, run:ID"),
    limit: int = LIMIT,
    offset: int = OFFSET,
) -> None:
    """The audit log, newest first (reading it is itself audited: the log is personal data)."""
    from core import audit

    store, config = open_store()
    with store.begin() as conn:
        page = audit.entries(conn, by=whoami(), limit=limit, offset=offset, subject=subject)
    table = new_table("at", "tenant", "who", "what", "whose", "detail")
    for row in page.rows:
        table.add_row(
            f"{row['at']:%Y-%m-%d %H:%M:%S}",
            row["tenant"] or "",
            row["actor"],
            row["action"],
            row["subject"] or "",
            row["detail"] or "",
        )
    print_page(table, page, "audit entries")


schedules = typer.Typer(no_args_is_help=True, help="The jobs the hub runs on a schedule, per tenant")
TENANT = typer.Option(..., "--tenant", help="the tenant's kommunkod")


@schedules.command("list")
def schedules_list() -> None:
    """Every job of every tenant: its cron expression, the next firing, and how the last one went."""
    import flows
    from core.scheduler import listing
    from schemas.identity import STOCKHOLM

    flows.load()  # the jobs
    store, config = open_store()
    table = new_table("job", "tenant", "cron", "next", "last", "outcome", "count", "by")
    for state in listing(store, config):
        last = state.last
        upcoming = state.next_at
        table.add_row(
            state.job,
            state.tenant,
            state.cron,
            f"paused by {state.paused_by}" if upcoming is None else f"{upcoming.astimezone(STOCKHOLM):%Y-%m-%d %H:%M}",
            "" if last is None else f"{last.started_at.astimezone(STOCKHOLM):%Y-%m-%d %H:%M:%S}",
            "" if last is None else last.outcome or ("running" if last.finished_at is None else ""),
            "" if last is None or last.count is None else str(last.count),
            "" if last is None else last.fired_by,
        )
    out.print(table)
    out.print("times in Europe/Stockholm")


@schedules.command("pause")
def schedules_pause(job: str, tenant: str = TENANT) -> None:
    """Let a job's slots pass for a tenant until it is resumed."""
    from core import scheduler
    from core.errors import Rejected

    hub = build_hub()
    try:
        scheduler.pause(hub.store, hub.config, job, tenant, by=whoami())
    except Rejected as error:
        raise fail(str(error)) from None
    out.print(f"{job} paused for {tenant}")


@schedules.command("resume")
def schedules_resume(job: str, tenant: str = TENANT) -> None:
    """Run a paused job on its schedule again, from its next slot."""
    from core import scheduler
    from core.errors import Rejected

    hub = build_hub()
    try:
        scheduler.resume(hub.store, hub.config, job, tenant, by=whoami())
    except Rejected as error:
        raise fail(str(error)) from None
    out.print(f"{job} resumed for {tenant}")


@schedules.command("run")
def schedules_run(job: str, tenant: str = TENANT) -> None:
    """Run a job for a tenant now, in this process (its firing is recorded as yours)."""
    from core import scheduler
    from core.errors import Rejected

    hub = build_hub()
    try:
        done = scheduler.run_now(hub.jobs, job, tenant, by=whoami())
    except Rejected as error:
        raise fail(str(error)) from None
    # what the job put in the outbox goes on with the running hub's relay: on the in-process
    # broker only that process has a worker
    if not done:
        raise fail(f"{job} failed for {tenant}: casehub schedules list shows why")
    out.print(f"{job} ran for {tenant}")


users = typer.Typer(no_args_is_help=True, help="The people who log in to the console")
PASSWORD_STDIN = typer.Option(False, "--password-stdin", help="read the password from standard input")


def _password(from_stdin: bool) -> str:
    import sys

    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@users.command("add")
def users_add(
    name: str,
    role: str = typer.Option(..., help="operations, review (approves runs), economy or read"),
    password_stdin: bool = PASSWORD_STDIN,
) -> None:
    """Add a user of the console, with an argon2 hash of the password asked for."""
    from core import users as people
    from core.errors import Rejected

    store, _config = open_store()
    try:
        people.add(store, name, role, _password(password_stdin), by=whoami())
    except Rejected as error:
        raise fail(str(error)) from None
    out.print(f"user {name} added, role {role}")


@users.command("passwd")
def users_passwd(name: str, password_stdin: bool = PASSWORD_STDIN) -> None:
    """Set a user's password (and lift a lockout)."""
    from core import users as people
    from core.errors import Rejected

    store, _config = open_store()
    try:
        people.set_password(store, name, _password(password_stdin), by=whoami())
    except Rejected as error:
        raise fail(str(error)) from None
    out.print(f"password of {name} set")


@users.command("disable")
def users_disable(name: str) -> None:
    """Stop a user from logging in; their open sessions end at their next request."""
    from core import users as people
    from core.errors import Rejected

    store, _config = open_store()
    try:
        people.disable(store, name, by=whoami())
    except Rejected as error:
        raise fail(str(error)) from None
    out.print(f"user {name} disabled")
