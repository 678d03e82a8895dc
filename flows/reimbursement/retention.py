"""The visits a correction run can no longer reach, purged (core.retention): every version of a visit
that starts in a period whose last run was approved more than the policy's `period_months` ago,
and in every period before it. A period with no approved run, or one approved later, keeps its
visits, and so does every period after it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, tuple_
from sqlalchemy.orm import aliased

from core.retention import BATCH, Policy, purges
from core.store import Store
from flows.reimbursement.tables import runs
from flows.visits.tables import VISIT_START, visits
from schemas.identity import STOCKHOLM
from schemas.money import Period

MARGIN = dt.timedelta(days=1)
"""A run reads the visits within a day of its period (`run._near`); so does this purge."""


@purges("visit_versions", "period_months")
def past_correction(store: Store, tenant: str, policy: Policy, now: dt.datetime, dry_run: bool) -> int:
    """Purge (or, dry, count) the versions of the visits past every correction."""
    boundary = _boundary(store, tenant, policy.period_months, now)
    if boundary is None:
        return 0
    edge = boundary - MARGIN
    later = aliased(visits)
    later_start = func.coalesce(later.c.actual_start, later.c.planned_start)
    still_reachable = exists().where(  # another version of the visit, in a period still open to correction
        later.c.tenant == visits.c.tenant,
        later.c.vendor == visits.c.vendor,
        later.c.visit_id == visits.c.visit_id,
        or_(later_start.is_(None), later_start >= edge),
    )
    due = and_(visits.c.tenant == tenant, VISIT_START < edge, ~still_reachable)
    if dry_run:
        with store.begin() as conn:
            return int(conn.scalar(select(func.count()).where(due)) or 0)
    taken = 0
    while True:
        with store.begin() as conn:
            batch = conn.execute(select(visits.c.vendor, visits.c.visit_id).where(due).distinct().limit(BATCH)).all()
            if batch:
                taken += conn.execute(
                    delete(visits).where(
                        visits.c.tenant == tenant,
                        tuple_(visits.c.vendor, visits.c.visit_id).in_([tuple(row) for row in batch]),
                    )
                ).rowcount
        if len(batch) < BATCH:
            return taken


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
