"""The payroll run of a tenant and period: draft, review, approve (specs/fees-and-payroll-rules.md, B).

A draft holds the period's lines and, for every earlier period paid within `months_back`, the
delta lines of the corrections: that period recomputed with the versions as they stand now,
minus what the approved files paid for it. Only the assignments with a version or stay report
stored since that period's first run can differ; only they are recomputed. A newer draft of a
period discards the older one. Approval freezes the run and has its file delivered; a period is
paid once (a unique index holds that), later changes are paid in a later period's run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, Row, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from core import audit, messages
from core.errors import Rejected
from core.store import Store, insert_many, utcnow
from flows.payroll.configuration import PayrollSettings
from flows.payroll.rules import Line, Paid, Terms, corrections, period_lines
from flows.payroll.tables import assignments, lines, runs, stays
from schemas.envelope import Envelope
from schemas.money import STOCKHOLM, Period
from schemas.payroll import ComponentName

BATCH = 5000
"""Lines written at a time, and assignments read at a time: memory stays flat as they grow."""

CHUNK = 1000
"""Assignments recomputed for a paid period at a time."""

SETTLED = dt.timedelta(hours=1)
"""How far before a run's start an input may have been stored and still be unseen by it (its
transaction committed later): such inputs are recomputed too. Recomputing more costs time only."""

LINE_COLUMNS = (
    "run_id",
    "tenant",
    "for_period",
    "assignment_id",
    "component",
    "kind",
    "employee_id",
    "recipient",
    "cost_centre",
    "pay_code",
    "text",
    "date_from",
    "date_to",
    "days",
    "unit_price",
    "amount",
)


def draft(
    store: Store,
    tenant: str,
    period: Period,
    settings: PayrollSettings,
    *,
    by: str,
    progress: Callable[[int], None] | None = None,
) -> int:
    """A draft run for the period; Rejected when the period is already paid."""
    with store.begin() as conn:
        paid = _approved(conn, tenant, period)
        if paid is not None:
            raise Rejected(f"{period} is paid (run {paid}); run a later period to pay its corrections", where="period")
        conn.execute(
            update(runs)
            .where(runs.c.tenant == tenant, runs.c.period == str(period), runs.c.status == "draft")
            .values(status="discarded")
        )
        run_id = int(
            conn.execute(
                insert(runs)
                .values(tenant=tenant, period=str(period), status="draft", created_at=utcnow(), created_by=by)
                .returning(runs.c.id)
            ).scalar_one()
        )
        writer = _Writer(conn, run_id, tenant, settings)
        for assignment_id, versions, stayed in _versions(conn, tenant, period):
            writer.add(period, assignment_id, period_lines(versions, period, stayed))
            if progress is not None and writer.assignments % BATCH == 0:
                progress(writer.assignments)
        for earlier, since in _paid_periods(conn, tenant, period, settings.months_back):
            _correct(conn, writer, tenant, earlier, since - SETTLED)
        writer.flush()
        audit.record(
            conn, actor=by, action="payroll.draft", tenant=tenant, subject=f"payroll-run:{run_id}", detail=str(period)
        )
    return run_id


def approve(store: Store, run_id: int, *, by: str, tenant: str | None = None) -> dict[str, Decimal]:
    """Freeze the draft and have its file delivered; the total per pay code. Rejected for a run that
    is not the period's draft, or a period already paid."""
    with store.begin() as conn:
        run = conn.execute(select(runs).where(runs.c.id == run_id).with_for_update()).first()
        if run is None or (tenant is not None and run.tenant != tenant):
            raise LookupError(f"no payroll run {run_id}")
        if run.status != "draft":
            raise Rejected(f"run {run_id} is {run.status}: only a draft is approved", where="run")
        paid = _approved(conn, run.tenant, Period.parse(run.period))
        if paid is not None:
            raise Rejected(f"{run.period} is paid (run {paid}); run a later period", where="run")
        envelope = _delivery_request(run)
        try:
            with conn.begin_nested():
                conn.execute(
                    update(runs)
                    .where(runs.c.id == run_id)
                    .values(
                        status="approved",
                        approved_at=utcnow(),
                        approved_by=by,
                        file_date=dt.datetime.now(STOCKHOLM).date(),
                        approval=envelope.id,
                    )
                )
        except IntegrityError:
            raise Rejected(f"{run.period} was paid meanwhile; run a later period", where="run") from None
        totals = dict(
            conn.execute(
                select(lines.c.pay_code, func.sum(lines.c.amount))
                .where(lines.c.run_id == run_id)
                .group_by(lines.c.pay_code)
                .order_by(lines.c.pay_code)
            ).all()
        )
        audit.record(
            conn,
            actor=by,
            action="payroll.approve",
            tenant=run.tenant,
            subject=f"payroll-run:{run_id}",
            detail=f"{run.period}, {len(totals)} pay codes",
        )
        messages.send_many(conn, [(envelope, "step:payroll.deliver")])
    return {code: Decimal(total) for code, total in totals.items()}


def resend(store: Store, tenant: str, run_id: int, *, by: str) -> None:
    """Deliver an approved run's file again: the same bytes under the same name. The file is written
    from the run's lines, so a new message asks for it: the approval's own may be purged by now."""
    with store.begin() as conn:
        run = conn.execute(select(runs).where(runs.c.id == run_id, runs.c.tenant == tenant)).first()
        if run is None:
            raise LookupError(f"no payroll run {run_id} in tenant {tenant}")
        if run.status != "approved":
            raise Rejected(f"run {run_id} is {run.status}: only an approved run has a file", where="run")
        messages.send_many(conn, [(_delivery_request(run), "step:payroll.deliver")])
        audit.record(conn, actor=by, action="payroll.resend", tenant=tenant, subject=f"payroll-run:{run_id}")


def _delivery_request(run: Row[Any]) -> Envelope:
    """The message that has an approved run's file delivered."""
    return Envelope(
        type="payroll.approved",
        tenant=run.tenant,
        source="casehub/payroll",
        payload={"run_id": run.id, "period": run.period},
    )


class _Writer:
    """The run's lines, turned into rows with their pay codes and written a batch at a time."""

    def __init__(self, conn: Connection, run_id: int, tenant: str, settings: PayrollSettings) -> None:
        self.conn, self.run_id, self.tenant, self.settings = conn, run_id, tenant, settings
        self.rows: list[tuple[Any, ...]] = []
        self.assignments = 0

    def add(self, period: Period, assignment_id: str, found: Sequence[Line], *, correction: bool = False) -> None:
        self.assignments += 1
        for line in found:
            code = self.settings.pay_codes[line.terms.kind][line.component]
            text = f"{code.text} {assignment_id}"
            self.rows.append(
                (
                    self.run_id,
                    self.tenant,
                    str(period),
                    assignment_id,
                    line.component,
                    line.terms.kind,
                    line.terms.employee_id,
                    line.terms.recipient,
                    line.terms.cost_centre,
                    code.code,
                    f"Rättelse {period} {text}" if correction else text,
                    line.date_from,
                    line.date_to,
                    line.days,
                    line.unit_price,
                    line.amount,
                )
            )
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        insert_many(self.conn, lines, LINE_COLUMNS, self.rows)
        self.rows = []


def _correct(conn: Connection, writer: _Writer, tenant: str, period: Period, since: dt.datetime) -> None:
    """The delta lines of a paid period, for the assignments whose inputs changed `since`."""
    changed = (
        select(assignments.c.assignment_id)
        .where(assignments.c.tenant == tenant, assignments.c.stored_at >= since)
        .union(
            select(stays.c.assignment_id).where(
                stays.c.tenant == tenant, stays.c.period == str(period), stays.c.stored_at >= since
            )
        )
    )
    ids = sorted(set(conn.scalars(changed)))
    for start in range(0, len(ids), CHUNK):  # a short list at a time: each query goes by the keys
        chunk = ids[start : start + CHUNK]
        paid = _paid(conn, tenant, period, chunk)
        for assignment_id, versions, stayed in _versions(conn, tenant, period, only=chunk):
            now = period_lines(versions, period, stayed)
            latest = max(versions, key=lambda terms: terms.version)
            deltas = corrections(now, paid.get(assignment_id, {}), latest, period)
            writer.add(period, assignment_id, deltas, correction=True)


def _paid(conn: Connection, tenant: str, period: Period, ids: Sequence[str]) -> dict[str, dict[ComponentName, Paid]]:
    """What the approved runs paid each of the assignments for the period, per component."""
    paid: dict[str, dict[ComponentName, Paid]] = {}
    for row in conn.execute(
        select(
            lines.c.assignment_id,
            lines.c.component,
            func.sum(lines.c.days),
            func.sum(lines.c.amount),
            func.max(lines.c.unit_price),
        )
        .join(runs, runs.c.id == lines.c.run_id)
        .where(
            runs.c.status == "approved",
            lines.c.tenant == tenant,
            lines.c.for_period == str(period),
            lines.c.assignment_id.in_(ids),
        )
        .group_by(lines.c.assignment_id, lines.c.component)
    ):
        paid.setdefault(row[0], {})[row[1]] = Paid(int(row[2]), Decimal(row[3]), Decimal(row[4]))
    return paid


def _versions(
    conn: Connection, tenant: str, period: Period, *, only: Sequence[str] | None = None
) -> Iterator[tuple[str, list[Terms], frozenset[dt.date]]]:
    """Each assignment's versions, as the rules read them, and its days with a stay in the period
    (from its latest report): streamed in one query, so that memory does not grow with them."""
    mine = [stays.c.tenant == tenant, stays.c.period == str(period)]
    if only is not None:
        mine.append(stays.c.assignment_id.in_(only))
    latest = (
        select(stays.c.assignment_id, func.max(stays.c.version).label("version"))
        .where(*mine)
        .group_by(stays.c.assignment_id)
        .subquery()
    )
    reported = (
        select(stays.c.assignment_id, stays.c.days)
        .join(latest, and_(latest.c.assignment_id == stays.c.assignment_id, latest.c.version == stays.c.version))
        .where(*mine)
        .subquery()
    )
    query = (
        select(assignments, reported.c.days.label("stays"))
        .join(reported, reported.c.assignment_id == assignments.c.assignment_id, isouter=True)
        .where(assignments.c.tenant == tenant)
    )
    if only is not None:
        query = query.where(assignments.c.assignment_id.in_(only))
    rows = conn.execute(
        query.order_by(assignments.c.assignment_id, assignments.c.version).execution_options(yield_per=BATCH)
    )
    for assignment_id, group in groupby(rows, key=lambda row: row.assignment_id):
        versions = list(group)
        days = (versions[0].stays or "").split(",")
        stayed = frozenset(dt.date(period.year, period.month, int(day)) for day in days if day)
        yield assignment_id, [_terms(row) for row in versions], stayed


def _terms(row: Row[Any]) -> Terms:
    components = {}
    if row.arvode is not None:
        components["arvode"] = (row.arvode, row.arvode_per)
    if row.omkostnad is not None:
        components["omkostnad"] = (row.omkostnad, row.omkostnad_per)
    return Terms(
        row.version,
        row.kind,
        row.employee_id,
        row.recipient,
        row.cost_centre,
        row.valid_from,
        row.valid_to,
        components,  # type: ignore[arg-type]
    )


def _approved(conn: Connection, tenant: str, period: Period) -> int | None:
    return conn.scalar(
        select(runs.c.id).where(runs.c.tenant == tenant, runs.c.period == str(period), runs.c.status == "approved")
    )


def _paid_periods(conn: Connection, tenant: str, period: Period, months_back: int) -> list[tuple[Period, dt.datetime]]:
    """The earlier periods within `months_back` that were paid, each with the start of its first run."""
    earliest = period
    for _ in range(months_back):
        earliest = earliest.previous()
    found = conn.execute(
        select(runs.c.period, func.min(runs.c.created_at))
        .where(
            runs.c.tenant == tenant,
            runs.c.status == "approved",
            runs.c.period >= str(earliest),
            runs.c.period < str(period),
        )
        .group_by(runs.c.period)
        .order_by(runs.c.period)
    ).all()
    return [(Period.parse(text), started) for text, started in found]
