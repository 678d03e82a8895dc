"""The visits a correction run can no longer reach, purged (core.retention): every version of a visit
that starts in a period whose last run was approved more than the policy's `period_months` ago,
and in every period before it. A period with no approved run, or one approved later, keeps its
visits, and so does every period after it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select

from core.retention import BATCH, Policy, paced, purges
from core.store import Store
from flows.reimbursement.tables import runs
from flows.visits.tables import VISIT_START, visits
from schemas.identity import STOCKHOLM
from schemas.money import Period

MARGIN = dt.timedelta(days=1)
"""A run reads the visits within a day of its period (`run._near`); so does this purge."""


@purges("visit_versions", "period_months")
def past_correction(store: Store, tenant: str, policy: Policy, now: dt.datetime, dry_run: bool) -> int:
    """Purge (or, dry, count) the versions of the visits past every correction, oldest first: a
    range of start times at a time, each version but those of a visit with a version still
    within reach, in one statement."""
    boundary = _boundary(store, tenant, policy.period_months, now)
    if boundary is None:
        return 0
    edge = boundary - MARGIN
    taken, low = 0, None
    while True:
        with paced(store) as conn:
            high = _batch_end(conn, tenant, low, edge)
            if high is None:
                return taken
            due = and_(_starting(tenant, low, high), ~_reachable(edge))
            if dry_run:
                taken += int(conn.scalar(select(func.count()).select_from(visits).where(due)) or 0)
            else:
                taken += conn.execute(delete(visits).where(due)).rowcount
        low = high


def _starting(tenant: str, low: dt.datetime | None, high: dt.datetime) -> Any:
    """The tenant's versions that start from `low` (from the first, if None) to before `high`."""
    within = and_(visits.c.tenant == tenant, VISIT_START < high)
    return within if low is None else and_(within, VISIT_START >= low)


def _batch_end(conn: Connection, tenant: str, low: dt.datetime | None, edge: dt.datetime) -> dt.datetime | None:
    """Where the batch from `low` ends: the start of the version `BATCH` on, or the next start
    after `low` if as many start at once; `edge` for the last; None when none is left before `edge`."""
    left = _starting(tenant, low, edge)
    at = conn.scalar(select(VISIT_START).where(left).order_by(VISIT_START).offset(BATCH).limit(1))
    if at is None:  # less than a batch left
        return edge if conn.scalar(select(VISIT_START).where(left).limit(1)) is not None else None
    if at != low:
        return at
    later = conn.scalar(select(func.min(VISIT_START)).where(left, VISIT_START > at))
    return edge if later is None else later


def _reachable(edge: dt.datetime) -> Any:
    """Whether a version's visit has a version (it or another) that a correction may still reach:
    one starting after `edge`, or not known to start. A probe of the visit's versions for each
    (OFFSET 0 keeps it one, where a join was planned as a scan of every version)."""
    other = visits.alias("other")
    starts = func.coalesce(other.c.actual_start, other.c.planned_start)
    return (
        select(other.c.version)
        .where(
            other.c.tenant == visits.c.tenant,
            other.c.vendor == visits.c.vendor,
            other.c.visit_id == visits.c.visit_id,
            or_(starts.is_(None), starts >= edge),
        )
        .offset(0)
        .exists()
    )


def _boundary(store: Store, tenant: str, months: int, now: dt.datetime) -> dt.datetime | None:
    """The start of the first period, from the oldest visit's on, that a correction may still
    reach; None when that is the oldest visit's own."""
    with store.begin() as conn:
        oldest = conn.scalar(select(func.min(VISIT_START)).where(visits.c.tenant == tenant))
        approved: dict[str, Any] = dict(
            conn.execute(  # the last approval of each period
                select(runs.c.period, func.max(runs.c.approved_at))
                .where(runs.c.tenant == tenant, runs.c.status == "approved")
                .group_by(runs.c.period)
            ).all()
        )
    if oldest is None:
        return None
    first = period = Period.of(oldest.astimezone(STOCKHOLM).date())
    while str(period) in approved and _months_after(approved[str(period)], months) <= now:
        period = period.next()
    return None if period == first else period.starts_at()


def _months_after(at: dt.datetime, months: int) -> dt.datetime:
    month = at.month - 1 + months
    year, month = at.year + month // 12, month % 12 + 1
    day = min(at.day, Period(year, month).days)
    return at.replace(year=year, month=month, day=day)
