"""`make demo`: the hub on the embedded default (SQLite, in-process broker) with simulated partners.

A case system sends a stream of case events (echoed back as receipts on its feed) and orders for
three LOV providers, one per channel (SOAP, REST, SFTP), which acknowledge them. Each flow adds
its part here; the demo exits non-zero when anything did not come out as it should.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

TENANT = "0125"  # Ekerö
TOKEN_ENV = "CASEHUB_TOKEN_0125_CASE_SYSTEM"
MUNICIPALITY = "2120000076"  # the organisation number in the payroll file's header (a sample)

CONFIG = f"""\
[[tenants]]
code = "{TENANT}"
name = "Ekerö kommun"

[[tenants.partners]]
id = "case-system"
kind = "case_system"
token_env = "{TOKEN_ENV}"
"""

Check = tuple[str, bool, str]


def run(*, workdir: Path, events: int, console: Console, serve_port: int | None = None) -> bool:
    """The demo's checks, printed; with `serve_port`, the hub goes on serving there afterwards, with
    the simulated partners, until Ctrl-C or SIGTERM (docs/partners.md tries the API against it)."""
    import flows
    from adapters.http_app import create_app
    from core.runtime import Hub
    from core.settings import Settings
    from sandbox.case_system import CaseSystem
    from sandbox.payroll import SimulatedPayroll
    from sandbox.providers import SimulatedProviders
    from sandbox.server import LiveServer
    from sandbox.visit_vendor import SimulatedVendors

    flows.load()
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("casehub.db*"):
        old.unlink()
    token = secrets.token_urlsafe(24)
    os.environ[TOKEN_ENV] = token
    checks: list[Check] = []
    with (
        SimulatedProviders(TENANT) as providers,
        SimulatedVendors(TENANT) as vendors,
        SimulatedPayroll(TENANT, MUNICIPALITY) as payroll,
    ):
        config = workdir / "casehub.toml"
        partners = providers.partners_toml() + vendors.partners_toml() + payroll.partners_toml()
        config.write_text(CONFIG + partners, encoding="utf-8")
        settings = Settings(broker_url="memory://", database_url=f"sqlite:///{workdir / 'casehub.db'}", config=config)
        hub = Hub(settings)
        hub.store.migrate()
        hub.start(worker=True)
        try:
            with LiveServer(create_app(hub, flows.routes(hub)), port=serve_port) as server:
                console.print(f"hub listening on {server.url} (SQLite {settings.database_url}, in-process broker)")
                case_system = CaseSystem(server.url, token, TENANT)
                checks += _case_events(case_system, events, console)
                order_checks, issued = _orders(hub, server.url, case_system, providers, console)
                checks += order_checks
                checks += _visits_and_run(hub, server.url, issued, providers, vendors, console)
                checks += _payroll(hub, case_system, payroll, console)
                checks += _migration(hub, workdir, console)
                checks.append(_dead_letters(hub))
                ok = _report(checks, console)
                if serve_port is not None:
                    _serve(server.url, token, providers, vendors, console)
        finally:
            hub.stop()
    return ok


def _dead_letters(hub) -> Check:
    from core import deadletters

    with hub.store.begin() as conn:
        letters = [
            letter for letter in deadletters.listing(conn, limit=1000).rows if not letter["step"].startswith("visits.")
        ]
    expected = [letter for letter in letters if "REJECT" in letter["reason"]]
    return (
        "dead letters: only the order the provider refused",
        letters == expected and len(expected) == 1,
        "; ".join(f"{x['step']}: {x['reason'][:60]}" for x in letters),
    )


def _report(checks: list[Check], console: Console) -> bool:
    table = Table("check", "result", "detail", title="casehub demo")
    for name, ok, detail in checks:
        table.add_row(name, "[green]ok[/]" if ok else "[red]FAILED[/]", detail)
    console.print(table)
    return all(ok for _, ok, _ in checks)


def _serve(url: str, token: str, providers, vendors, console: Console) -> None:
    """Serve until Ctrl-C or SIGTERM, after saying how a partner calls the hub."""
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    console.print(
        f"the demo's hub goes on serving at {url} until Ctrl-C, with the simulated partners; "
        "to call it as docs/partners.md does:",
        soft_wrap=True,
    )
    console.print(
        f"export HUB={url} CASE_SYSTEM_TOKEN={token} PROVIDER_TOKEN={providers.tokens['rest']} "
        f"PROVIDER_ORG={providers.orgs['rest']} VENDOR_TOKEN={vendors.push_token}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    try:
        while not stopped.wait(1):
            pass
    except KeyboardInterrupt:
        pass


def _case_events(case_system, events: int, console: Console) -> list[Check]:
    """Case events in batches, a resent batch, a bad one; receipts read back from the feed."""
    sent = [case_system.event() for _ in range(events)]
    accepted = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("case system sends events", total=events)
        for start in range(0, events, 50):
            batch = sent[start : start + 50]
            accepted += len(case_system.post(batch).json()["accepted"])
            progress.advance(task, len(batch))
    again = case_system.post(sent[:50]).json()
    bad = case_system.event()
    person = bad["payload"]["person"]
    bad["payload"]["person"] = person[:-1] + str((int(person[-1]) + 1) % 10)
    refused = case_system.post(bad)
    seen: list[dict] = []
    _until(lambda: seen.extend(case_system.read_feed()) or seen, lambda got: len(got) >= events)
    receipts = sum(1 for e in seen if e["type"] == "hub.receipt")
    return [
        ("events accepted", accepted == events, f"{accepted} of {events}"),
        (
            "resent batch taken as duplicates",
            len(again["duplicates"]) == len(sent[:50]),
            f"{len(again['duplicates'])} duplicates, {len(again['accepted'])} new",
        ),
        (
            "bad personnummer refused at the door",
            refused.status_code == 422,
            f"{refused.status_code} {refused.json().get('where')}: {refused.json().get('error')}",
        ),
        ("receipts on the case system's feed", receipts == events, f"{receipts} of {events}"),
    ]


def _orders(hub, hub_url: str, case_system, providers, console: Console) -> list[Check]:
    """Orders to three providers on three channels, amended, one refused, one protected; acks back."""
    from sqlalchemy import select

    from core.scheduler import run_now
    from flows.orders.tables import orders

    issued = []
    for org in providers.orgs.values():
        mine = [case_system.order(org, protected=(n == 1)) for n in range(4)]
        first = mine[0]["payload"]
        mine.append(
            case_system.order(
                org, order_id=first["order_id"], version=2, kind="amend", person=first["person"]["personnummer"]
            )
        )
        issued += mine
    refused = case_system.order(providers.orgs["rest"], instructions="REJECT: no staff in that area")
    issued.append(refused)
    console.print(
        f"case system issues {len(issued)} orders and amendments to 3 providers (SOAP, REST, SFTP); "
        "one says REJECT, and the REST provider refusing it (a warning below) is part of the plan"
    )
    for order in issued:
        case_system.post(order).raise_for_status()

    def rows():
        with hub.store.begin() as conn:
            return conn.execute(select(orders)).all()

    newest = {}  # the version each order ends at: the providers acknowledge that one
    for order in issued:
        newest[order["payload"]["order_id"]] = max(
            order["payload"]["version"], newest.get(order["payload"]["order_id"], 0)
        )
    settled = _until(
        rows,
        lambda found: (
            len(found) == 13
            and all(
                r.state == "refused" or (r.state == "delivered" and r.delivered_version == newest[r.order_id])
                for r in found
            )
        ),
    )
    taken = providers.taken()
    acknowledged = providers.acknowledge(hub_url)
    run_now(hub.jobs, "orders.sftp_acknowledgements", TENANT, by="user:drift")
    final = {r.order_id: r.state for r in _until(rows, lambda found: sum(r.state == "accepted" for r in found) == 12)}
    protected = [o["payload"]["person"] for o in issued if o["payload"]["person"]["protected_identity"]]
    received = providers.raw_bytes()
    theirs = [(p, raw) for p in protected for raw in received if p["personnummer"].encode() in raw]
    leaked = [p for p, raw in theirs if p["address"]["street"].encode() in raw or p["phone"].encode() in raw]
    accepted = sum(state == "accepted" for state in final.values())
    return [
        (
            "orders delivered to each provider",
            len(settled) == 13 and all(len(v) >= 4 for v in taken.values()),
            ", ".join(f"{channel}: {len(v)}" for channel, v in taken.items()) + " (4 orders, 1 amended, each)",
        ),
        (
            "acknowledgements back on three channels",
            accepted == 12 and acknowledged == 12,
            f"{acknowledged} sent, {accepted} orders accepted",
        ),
        (
            "the refused order, with the provider's reason",
            final.get(refused["payload"]["order_id"]) == "refused",
            final.get(refused["payload"]["order_id"], "missing"),
        ),
        (
            "no address of a protected person left the hub",
            not leaked and len(theirs) >= 3,
            f"{len(theirs)} deliveries for {len(protected)} protected persons, {len(leaked)} with an address",
        ),
    ], [o for o in issued if o is not refused]


def _visits_and_run(hub, hub_url: str, issued: list[dict], providers, vendors, console: Console) -> list[Check]:
    """A month of visits from three vendors (push, poll, file), then the run: draft, review, an
    adjustment, approval, and each provider's basis delivered."""
    import datetime as dt
    import random

    from sqlalchemy import func, select

    from core.scheduler import run_now
    from core.transfers import transfers
    from flows.reimbursement import run as reimbursement
    from flows.reimbursement.configuration import rules_of
    from flows.reimbursement.tables import findings
    from flows.visits.tables import visits
    from sandbox.visit_vendor import month_of_visits
    from schemas.money import Period

    period = Period.of(dt.date.today())
    customers = {(o["payload"]["provider_org"], o["payload"]["person"]["personnummer"]) for o in issued}
    made = month_of_visits(
        random.Random(7),
        period,
        [(org, pnr, ["HT-OMS", "HT-SERV"]) for org, pnr in sorted(customers)],
        prefix="D",
        per_customer=25,
    )
    vendors.report(hub_url, made, period.first_day)
    run_now(hub.jobs, "visits.poll", TENANT, by="user:drift")
    run_now(hub.jobs, "visits.files", TENANT, by="user:drift")
    with hub.store.begin() as conn:
        stored = dict(conn.execute(select(visits.c.vendor, func.count()).group_by(visits.c.vendor)).all())
    console.print(
        f"vendors reported {len(made)} visits for {period}: " + ", ".join(f"{v} {n}" for v, n in stored.items())
    )

    rules = rules_of(hub.config.tenant(TENANT))
    run_id = reimbursement.draft(hub.store, TENANT, period, rules, by="user:demo")
    with hub.store.begin() as conn:
        review = dict(
            conn.execute(
                select(findings.c.code, func.count()).where(findings.c.run_id == run_id).group_by(findings.c.code)
            ).all()
        )
    org, pnr = sorted(customers)[0]
    reimbursement.adjust(
        hub.store,
        run_id,
        (org, pnr, "omsorg", "day", rules.rates[2].sek_per_hour),
        30,
        by="user:granskare",
        why="visit on paper while the phone was broken",
    )
    totals = reimbursement.approve(hub.store, run_id, by="user:granskningsgrupp")
    hub.relay.nudge()
    basis_files = select(func.count()).where(transfers.c.name.like("ersattning_%"))
    sent = _until(lambda: _scalar(hub, basis_files), lambda n: n >= 6)
    table = Table("provider", "basis (kr)", title=f"approved reimbursement basis {period}, run {run_id}")
    for provider, total in sorted(totals.items()):
        table.add_row(provider, f"{total:,.2f}")
    console.print(table)
    return [
        (
            "visits stored from three vendors on three channels",
            sum(stored.values()) == len(made) and len(stored) == 3,
            f"{sum(stored.values())} of {len(made)}",
        ),
        (
            "run reviewed: unpaid visits and warnings",
            bool(review),
            ", ".join(f"{k} {v}" for k, v in sorted(review.items())),
        ),
        ("basis approved for each provider", len(totals) == 3, f"{sum(totals.values()):,.2f} kr in all"),
        (
            "basis files (CSV, HTML) delivered over SOAP, REST and SFTP",
            sent == 6 and _basis_taken(providers) == 6,
            f"{sent} files recorded as transfers",
        ),
    ]


def _payroll(hub, case_system, payroll, console: Console) -> list[Check]:
    """A dozen assignments of all three kinds, paid for last month and this one: a start in the middle
    of last month, an end in the middle of this one, and a raise that reaches back to last month."""
    import datetime as dt

    from sqlalchemy import func, select

    from adapters.paxml import read_paxml
    from core.store.tables import processed
    from flows.payroll import run
    from flows.payroll.configuration import payroll_settings
    from schemas.money import Period

    this = Period.of(dt.date.today())
    last = this.previous()
    day = last.first_day.isoformat()[:8]
    kinds = {"A": "foster_family", "K": "contact_family", "P": "contact_person"}
    amounts = {"A": ("9800.00", "5420.00"), "K": ("350.00", "250.00"), "P": ("1450.00", "300.00")}
    decided = [
        case_system.assignment(
            f"{prefix}-{n}",
            kind=kinds[prefix],
            valid_from=f"{day}10" if (prefix, n) == ("A", 2) else f"{last.year - 1}-01-01",
            valid_to=f"{this.first_day.isoformat()[:8]}15" if (prefix, n) == ("P", 3) else None,
            arvode=amounts[prefix][0],
            omkostnad=amounts[prefix][1],
        )
        for prefix in kinds
        for n in range(1, 5)
    ]
    stays = [
        case_system.stays(f"K-{n}", str(period), [6, 7, 8, 20 + n]) for n in range(1, 5) for period in (last, this)
    ]
    raised = case_system.assignment("A-1", version=2, valid_from=last.first_day.isoformat(), arvode="10400.00")

    def handled(events: list[dict]) -> None:
        case_system.post(events).raise_for_status()
        ids = [event["id"] for event in events]
        count = select(func.count()).where(processed.c.step == "payroll.store", processed.c.key.in_(ids))
        _until(lambda: _scalar(hub, count), lambda n: n == len(ids))

    settings = payroll_settings(hub.config.tenant(TENANT))
    handled(decided + stays[::2])
    first = run.draft(hub.store, TENANT, last, settings, by="user:lonehandlaggare")
    run.approve(hub.store, first, by="user:granskare")
    handled([raised] + stays[1::2])
    second = run.draft(hub.store, TENANT, this, settings, by="user:lonehandlaggare")
    run.approve(hub.store, second, by="user:granskare")
    hub.relay.nudge()
    files = _until(payroll.files, lambda found: len(found) == 2)
    deltas = []
    if len(files) == 2:
        _, paid = read_paxml(files[max(files)])
        deltas = [line for line in paid if line.text.startswith("Rättelse")]
        table = Table("pay code", "text", "from", "to", "days", "amount", title=f"payroll {this}: the corrections")
        for line in deltas:
            table.add_row(
                line.pay_code,
                line.text,
                f"{line.date_from}",
                f"{line.date_to}",
                f"{line.quantity}",
                f"{line.amount:,.2f}",
            )
        console.print(table)
    children = [event["payload"]["child"].encode() for event in decided]
    return [
        (
            "payroll files for two months delivered over SFTP",
            len(files) == 2,
            ", ".join(f"{name} ({len(data):,} bytes)" for name, data in files.items()),
        ),
        (
            "the raise reaching back is a correction line",
            [line.text for line in deltas] == [f"Rättelse {last} Arvode familjehem A-1"],
            "; ".join(f"{line.text}: {line.amount:,.2f}" for line in deltas),
        ),
        (
            "no child in any payroll file",
            not any(child in data for child in children for data in files.values()),
            f"{len(children)} children's personnummer looked for",
        ),
    ]


def _migration(hub, workdir: Path, console: Console) -> list[Check]:
    """A small dirty Logica export (every fault of the contract once) migrated, its reconciliation
    shown; a second run over the same files sends nothing new."""
    import shutil

    from sqlalchemy import func, select

    from core.store.tables import messages
    from flows.migration import run
    from flows.migration.report import report, write_quarantine
    from sandbox.legacy_export import dirty_export

    folder = workdir / "logica-export"
    shutil.rmtree(folder, ignore_errors=True)
    export = dirty_export(folder)
    legacy = select(func.count()).where(messages.c.type.like("legacy.%"))
    runs = []
    for _ in range(2):
        run_id = run.start(hub.store, TENANT, folder, dry_run=False, by="user:migrering")
        run.go(hub.store, run_id)
        runs.append((run_id, _scalar(hub, legacy)))
    found = report(hub.store, runs[0][0], by="user:migrering")
    write_quarantine(hub.store, runs[0][0], workdir / "migration" / f"run-{runs[0][0]}")
    for name, f in found["files"].items():
        trailer = "no trailer" if f["trailer_count"] is None else f"trailer {f['trailer_count']}"
        console.print(
            f"{name}: {f['read']} read = {f['migrated']} migrated + {f['rejected']} rejected + "
            f"{f['duplicates']} duplicates; {trailer}{'' if f['trailer_ok'] else ', DISAGREES'}"
        )
    console.print(f"legacy run {found['run']}: {'RECONCILES' if found['reconciles'] else 'DOES NOT RECONCILE'}")
    accounted = all(f["read"] == f["migrated"] + f["rejected"] + f["duplicates"] for f in found["files"].values())
    return [
        (
            "legacy export judged record by record",
            accounted and sum(f["read"] for f in found["files"].values()) == sum(export.counts.values()),
            f"{len(found['rejected'])} rejected, {len(found['duplicates'])} duplicates, "
            f"{sum(f['migrated'] for f in found['files'].values())} migrated; {len(export.faults)} faults planted",
        ),
        (
            "a second run over the same files sends nothing new",
            runs[1][1] == runs[0][1] > 0,
            f"{runs[0][1]} documents sent to the case system, then {runs[1][1] - runs[0][1]}",
        ),
    ]


def _scalar(hub, query):
    with hub.store.begin() as conn:
        return conn.scalar(query)


def _basis_taken(providers) -> int:
    """The basis files the three providers hold."""
    over_sftp = list((providers.sftp_root / "inbound").glob("ersattning_*"))
    return len(providers.soap_app.state.files) + len(providers.rest_app.state.files) + len(over_sftp)


def _until(read, done, timeout: float = 60.0):
    """`read()` again and again until `done(value)` or time runs out; the last value either way."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value
