"""The monthly run per tenant and period: draft, review, adjust, approve; corrections after approval.

A draft is computed from the stored visits and orders by the rules engine (`rules.py`) and kept
as lines and findings; computing it again replaces it and gives the same result. Adjustments
(who, what, why) are audited and shown on the basis. Approval freezes the run; visits that come
or change after it are paid by a correction run for the same period, holding only differences.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal

from sqlalchemy import Connection, and_, case, delete, func, insert, or_, select, tuple_, update

from core import audit, messages
from core.errors import Rejected
from core.store import Store, insert_many, utcnow
from flows.orders.tables import orders
from flows.reimbursement.calendar import lock_date
from flows.reimbursement.rules import OrderRecord, RunStream, ordered_minutes
from flows.reimbursement.tables import adjustments, findings, lines, locks, ordered, runs
from flows.visits.tables import VISIT_START, visits
from schemas.envelope import Envelope
from schemas.money import Period, round_ore
from schemas.orders import Order
from schemas.reimbursement import Rules

CHUNK = 10_000
ORDER_CHUNK = 1_000
LINE_KEY = ("provider_org", "customer", "category", "band", "rate")
_SIXTY = Decimal(60)


class VisitRow:
    """A stored visit version as the engine reads it (the engine takes any object with these names)."""

    __slots__ = (
        "visit_id",
        "version",
        "provider_org",
        "customer_pnr",
        "actual_start",
        "actual_end",
        "planned_start",
        "confirmation",
        "services",
        "double_staffing",
        "declined",
        "approved",
    )

    def __init__(self, row) -> None:
        (
            self.visit_id,
            self.version,
            self.provider_org,
            self.customer_pnr,
            self.actual_start,
            self.actual_end,
            self.planned_start,
            self.confirmation,
            services,
            self.double_staffing,
            self.declined,
            self.approved,
        ) = row[:12]
        self.services = services.split(",") if services else []


def draft(
    store: Store,
    tenant: str,
    period: Period,
    rules: Rules,
    *,
    by: str,
    progress: Callable[[int], None] | None = None,
    processes: int = 1,
) -> int:
    """Compute the period's run as a draft (a correction when the period is approved); its id.

    A regular run counts the versions received before the period's lock date. A correction run
    counts every version received before it starts (spec section 5: the lock decides which run
    pays a version, not whether it is paid), and holds only the differences from what was approved.

    With `processes` > 1 on PostgreSQL the providers are split between that many processes, each
    streaming and deciding its providers' visits (a provider's visits never depend on another's).
    """
    with store.begin() as conn:
        started = utcnow()
        approved = _approved(conn, tenant, period)
        kind = "correction" if approved else "regular"
        override = (
            started
            if approved
            else conn.scalar(select(locks.c.lock_at).where(locks.c.tenant == tenant, locks.c.period == str(period)))
        )
        carried = []  # a new draft keeps the reviewers' adjustments of the one it replaces
        for old in conn.scalars(
            select(runs.c.id).where(runs.c.tenant == tenant, runs.c.period == str(period), runs.c.status != "approved")
        ).all():
            carried += [
                dict(row._mapping)
                for row in conn.execute(
                    select(adjustments).where(adjustments.c.run_id == old).order_by(adjustments.c.id)
                )
            ]
            _drop(conn, old)
        order_list = _orders(conn, tenant)
        run_id = conn.execute(
            insert(runs)
            .values(
                tenant=tenant,
                period=str(period),
                kind=kind,
                status="computing",
                lock_at=lock_date(period, rules, override),
                created_at=started,
                created_by=by,
                visits=0,
                paid=0,
            )
            .returning(runs.c.id)
        ).scalar_one()
        providers = _providers(conn, tenant, period) if processes > 1 and store.is_postgresql else []
    if len(providers) > 1:
        parts = [providers[i::processes] for i in range(processes)]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(len(parts), mp_context=context) as pool:
            results = list(
                pool.map(
                    _compute_part,
                    [(store.url, run_id, tenant, str(period), rules, override, order_list, part) for part in parts],
                )
            )
    else:
        results = [_compute(store, run_id, tenant, period, rules, override, order_list, None, progress)]
    visits = sum(result[0] for result in results)
    paid = sum(result[1] for result in results)
    computed = {key: minutes for result in results for key, minutes in result[2].items()}
    with store.begin() as conn:
        rows = _lines(conn, run_id, computed, approved)
        if rows:
            conn.execute(insert(lines), rows)
        planned = ordered_minutes(period, order_list)
        if planned:
            conn.execute(
                insert(ordered),
                [
                    {"run_id": run_id, "provider_org": org, "category": category, "minutes": minutes}
                    for (org, category), minutes in sorted(planned.items())
                ],
            )
        for old in carried:
            _apply(conn, run_id, tuple(old[k] for k in LINE_KEY), old["minutes"], old["by"], old["why"], old["at"])
        conn.execute(update(runs).where(runs.c.id == run_id).values(status="draft", visits=visits, paid=paid))
        audit.record(
            conn,
            actor=by,
            action="reimbursement.draft",
            tenant=tenant,
            subject=f"run:{run_id}",
            detail=f"{period} {kind}: {visits} visits, {paid} paid",
        )
    if progress:
        progress(visits)
    return run_id


def _compute(
    store: Store,
    run_id: int,
    tenant: str,
    period: Period,
    rules: Rules,
    override,
    order_list,
    providers: list[str] | None,
    progress=None,
) -> tuple[int, int, dict[tuple, int]]:
    """Decide the visits (of `providers`, or all): findings written, (visits, paid, minutes per line) returned."""
    with store.reading() as reader, store.begin() as conn:
        versions = _visit_versions(reader, tenant, period, lock_date(period, rules, override), providers)
        stream = RunStream(period, rules, order_list, versions, lock_override=override, tenant=tenant)
        pending = []
        for outcome in stream:
            if outcome.paid and not outcome.warnings:
                continue
            codes = outcome.warnings if outcome.paid else [outcome.reason]
            pending.extend(
                (
                    run_id,
                    _digits(outcome.provider_org),
                    _digits(outcome.customer),
                    outcome.visit_id,
                    outcome.version,
                    code,
                    int(outcome.paid),
                    outcome.paid_minutes,
                )
                for code in codes
            )
            if len(pending) >= CHUNK:
                insert_many(conn, findings, FINDING_COLUMNS, pending)
                pending = []
                if progress:
                    progress(stream.visits)
        insert_many(conn, findings, FINDING_COLUMNS, pending)
        computed = {
            (basis.provider_org.digits, line.customer.digits, line.category, line.band, line.rate): line.minutes
            for basis in stream.bases().values()
            for line in basis.lines
        }
    return stream.visits, stream.paid, computed


def _compute_part(args: tuple) -> tuple[int, int, dict[tuple, int]]:
    """`_compute` in a process of its own, with a store of its own."""
    url, run_id, tenant, period, rules, override, order_list, providers = args
    store = Store(url, pool_size=2)
    try:
        return _compute(store, run_id, tenant, Period.parse(period), rules, override, order_list, providers)
    finally:
        store.dispose()


def _providers(conn: Connection, tenant: str, period: Period) -> list[str]:
    query = select(visits.c.provider_org).where(visits.c.tenant == tenant, _near(VISIT_START, period)).distinct()
    return sorted(conn.scalars(query))


def set_lock(store: Store, tenant: str, period: Period, lock_at: dt.datetime, *, by: str) -> None:
    """The review group sets the period's lock date (e.g. later, when a vendor was down)."""
    if lock_at <= period.ends_at():
        raise Rejected(f"the lock date of {period} must be after the period", where="lock_at")
    with store.begin() as conn:
        conn.execute(delete(locks).where(locks.c.tenant == tenant, locks.c.period == str(period)))
        conn.execute(
            insert(locks).values(tenant=tenant, period=str(period), lock_at=lock_at, set_by=by, set_at=utcnow())
        )
        audit.record(
            conn,
            actor=by,
            action="reimbursement.lock",
            tenant=tenant,
            subject=f"period:{period}",
            detail=f"lock at {lock_at.isoformat()}",
        )


def adjust(
    store: Store, run_id: int, key: tuple[str, str, str, str, Decimal], minutes: int, *, by: str, why: str
) -> None:
    """Add (or, negative, remove) minutes on a line of a draft, with who and why."""
    if not why.strip():
        raise Rejected("an adjustment needs its reason", where="why")
    with store.begin() as conn:
        run = _draft(conn, run_id)
        _apply(conn, run_id, key, minutes, by, why, utcnow())
        audit.record(
            conn,
            actor=by,
            action="reimbursement.adjust",
            tenant=run.tenant,
            subject=f"run:{run_id}",
            detail=f"{minutes:+d} min on {key[0]}/{key[2]}/{key[3]}: {why}",
        )


def _apply(conn: Connection, run_id: int, key: tuple, minutes: int, by: str, why: str, at: dt.datetime) -> None:
    match = and_(lines.c.run_id == run_id, *(lines.c[name] == value for name, value in zip(LINE_KEY, key, strict=True)))
    line = conn.execute(select(lines).where(match).with_for_update()).first()
    if line is None:
        conn.execute(
            insert(lines).values(
                dict(zip(LINE_KEY, key, strict=True))
                | {"run_id": run_id, "minutes": 0, "adjusted_minutes": 0, "amount": Decimal("0.00")}
            )
        )
        line = conn.execute(select(lines).where(match)).one()
    total = line.minutes + line.adjusted_minutes + minutes
    if total < 0:
        raise Rejected(f"the line would have {total} minutes", where="minutes")
    conn.execute(
        update(lines)
        .where(match)
        .values(adjusted_minutes=line.adjusted_minutes + minutes, amount=_amount(total, key[4]))
    )
    conn.execute(
        insert(adjustments).values(
            dict(zip(LINE_KEY, key, strict=True))
            | {"run_id": run_id, "minutes": minutes, "by": by, "why": why, "at": at}
        )
    )


def approve(store: Store, run_id: int, *, by: str) -> dict[str, Decimal]:
    """Freeze the run; its basis goes to each provider. Returns the total per provider."""
    with store.begin() as conn:
        run = _draft(conn, run_id)
        conn.execute(
            update(runs).where(runs.c.id == run_id).values(status="approved", approved_at=utcnow(), approved_by=by)
        )
        totals = dict(
            conn.execute(
                select(lines.c.provider_org, func.sum(lines.c.amount))
                .where(lines.c.run_id == run_id)
                .group_by(lines.c.provider_org)
            ).all()
        )
        audit.record(
            conn,
            actor=by,
            action="reimbursement.approve",
            tenant=run.tenant,
            subject=f"run:{run_id}",
            detail=f"{run.period} {run.kind}, {len(totals)} providers",
        )
        for provider in totals:
            envelope = Envelope(
                type="reimbursement.basis_approved",
                tenant=run.tenant,
                source="casehub/reimbursement",
                payload={"run_id": run_id, "provider_org": provider, "period": run.period},
            )
            messages.send_many(conn, [(envelope, "step:reimbursement.deliver")])
    return {provider: Decimal(total) for provider, total in totals.items()}


COPY_TYPES = [
    "text",
    "int4",
    "text",
    "text",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "text",
    "text",
    "bool",
    "bool",
    "bool",
    "timestamptz",
]
"""The PostgreSQL types of the columns `_visit_versions` selects, in order, for a binary COPY."""

FINDING_COLUMNS = ("run_id", "provider_org", "customer", "visit_id", "version", "code", "paid", "paid_minutes")


def _draft(conn: Connection, run_id: int):
    run = conn.execute(select(runs).where(runs.c.id == run_id).with_for_update()).first()
    if run is None:
        raise LookupError(f"no run {run_id}")
    if run.status != "draft":
        raise Rejected(f"run {run_id} is {run.status}: an approved run never changes", where="run")
    return run


def _near(start, period: Period):
    """A visit starting at `start` may belong to the period: within a day of it (the engine decides exactly)."""
    return or_(
        start.is_(None),
        and_(start >= period.starts_at() - dt.timedelta(days=1), start < period.ends_at() + dt.timedelta(days=1)),
    )


def _counted_of_edited(tenant: str, lock_at: dt.datetime):
    """Of each edited visit (one with a version above 1), the counted version's group and start.

    The counted version is the highest received before the lock, else the highest. An edit can
    move a visit to another customer, provider or day; every version of it must then be read
    in the counted version's group, or both groups would count it.
    """
    edited = select(visits.c.vendor, visits.c.visit_id).where(visits.c.tenant == tenant, visits.c.version > 1)
    rank = func.row_number().over(
        partition_by=(visits.c.vendor, visits.c.visit_id),
        order_by=(case((visits.c.received_at < lock_at, 0), else_=1), visits.c.version.desc()),
    )
    ranked = (
        select(
            visits.c.vendor,
            visits.c.visit_id,
            visits.c.provider_org,
            visits.c.customer,
            VISIT_START.label("start"),
            rank.label("rank"),
        )
        .where(visits.c.tenant == tenant, tuple_(visits.c.vendor, visits.c.visit_id).in_(edited))
        .subquery()
    )
    return select(ranked).where(ranked.c.rank == 1).subquery("counted")


def _visit_versions(
    conn: Connection, tenant: str, period: Period, lock_at: dt.datetime, providers: list[str] | None = None
) -> Iterator[tuple[VisitRow, dt.datetime]]:
    """Every stored version of the visits near the period (of `providers`, or all), in the engine's
    order; each version of an edited visit in the group of its counted version."""
    counted = _counted_of_edited(tenant, lock_at)
    joined = visits.outerjoin(
        counted, and_(counted.c.vendor == visits.c.vendor, counted.c.visit_id == visits.c.visit_id)
    )
    provider = func.coalesce(counted.c.provider_org, visits.c.provider_org)
    customer = func.coalesce(counted.c.customer, visits.c.customer)
    start = func.coalesce(counted.c.start, VISIT_START)
    query = (
        select(
            visits.c.visit_id,
            visits.c.version,
            provider,
            customer,
            visits.c.actual_start,
            visits.c.actual_end,
            visits.c.planned_start,
            visits.c.confirmation,
            visits.c.services,
            visits.c.double_staffing,
            visits.c.declined,
            visits.c.approved,
            visits.c.received_at,
        )
        .select_from(joined)
        .where(visits.c.tenant == tenant, _near(start, period))
        .order_by(provider, customer)
    )
    if providers is not None:
        query = query.where(provider.in_(providers))
    if conn.dialect.name == "postgresql":  # COPY in binary, straight from psycopg: twice as fast as a cursor
        compiled = query.compile(conn, compile_kwargs={"render_postcompile": True})
        with conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY ({compiled}) TO STDOUT (FORMAT BINARY)", compiled.params) as copy:
                copy.set_types(COPY_TYPES)
                for row in copy.rows():
                    yield VisitRow(row), row[12]
        return
    for row in conn.execute(query.execution_options(stream_results=True, yield_per=CHUNK)):  # this query only
        yield VisitRow(row), row[12]


def _orders(conn: Connection, tenant: str) -> list[OrderRecord]:
    """Each order's current state, light: read and converted a chunk at a time, so the pydantic
    documents of thousands of orders are never all in memory at once. A cancellation that carries
    no services ends the last version that did, the day before its effective date."""
    query = (
        select(orders.c.message_id, orders.c.state_message_id)
        .where(orders.c.tenant == tenant, orders.c.state != "refused")
        .order_by(orders.c.order_id)
    )
    records = []
    for chunk in conn.execute(query).partitions(ORDER_CHUNK):
        found = messages.load_many_envelopes(conn, [i for row in chunk for i in row if i is not None])
        for latest_id, state_id in chunk:
            latest = Order.model_validate(found[latest_id].payload)
            if latest.kind == "cancel" and not latest.services:
                if state_id is None:
                    continue  # cancelled before anything was granted
                state = Order.model_validate(found[state_id].payload)
                records.append(OrderRecord.from_order(state, ends_before=latest.effective_date, tenant=tenant))
            else:
                records.append(OrderRecord.from_order(latest, tenant=tenant))
    return records


def _approved(conn: Connection, tenant: str, period: Period) -> list[int]:
    return list(
        conn.scalars(
            select(runs.c.id).where(runs.c.tenant == tenant, runs.c.period == str(period), runs.c.status == "approved")
        )
    )


def _paid_amounts(conn: Connection, run_ids: list[int]) -> dict[tuple, tuple[int, int, Decimal]]:
    """(computed minutes, adjusted minutes, amount) approved per line, over every approved run of the period."""
    query = (
        select(
            *(lines.c[k] for k in LINE_KEY),
            func.sum(lines.c.minutes),
            func.sum(lines.c.adjusted_minutes),
            func.sum(lines.c.amount),
        )
        .where(lines.c.run_id.in_(run_ids))
        .group_by(*(lines.c[k] for k in LINE_KEY))
    )
    return {tuple(row[:5]): (int(row[5]), int(row[6]), row[7]) for row in conn.execute(query)}


def _lines(conn: Connection, run_id: int, computed: dict[tuple, int], approved: list[int]) -> list[dict]:
    """The run's lines: as computed; for a correction, the differences from what was approved.

    A correction compares computed minutes with computed minutes, so the reviewers' approved
    adjustments stand: the line is now worth its computed minutes plus those adjustments, and the
    correction pays that less what was paid."""
    paid = _paid_amounts(conn, approved) if approved else {}
    rows = []
    for key in sorted(set(computed) | set(paid)):
        minutes = computed.get(key, 0)
        paid_minutes, adjusted, paid_amount = paid.get(key, (0, 0, Decimal("0.00")))
        row = dict(zip(LINE_KEY, key, strict=True)) | {
            "run_id": run_id,
            "minutes": minutes - paid_minutes,
            "adjusted_minutes": 0,
            "amount": _amount(minutes + adjusted, key[4]) - paid_amount,
        }
        if not approved or row["minutes"] or row["amount"]:
            rows.append(row)
    return rows


def _drop(conn: Connection, run_id: int) -> None:
    for table in (findings, adjustments, lines, ordered):
        conn.execute(delete(table).where(table.c.run_id == run_id))
    conn.execute(delete(runs).where(runs.c.id == run_id))


def _amount(minutes: int, rate: Decimal) -> Decimal:
    return round_ore(minutes * Decimal(rate) / _SIXTY)


def _digits(value) -> str:
    return value if isinstance(value, str) else value.digits
