"""The visits a correction run can no longer reach, purged (core.retention): every version of a visit
that starts in a period whose last run was approved more than the policy's `period_months` ago,
and in every period before it. A period with no approved run, or one approved later, keeps its
visits, and so does every period after it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, tuple_

from core.retention import BATCH, Policy, purges
from core.store import Store, among
from flows.reimbursement.tables import runs
from flows.visits.tables import VISIT_START, visits
from schemas.identity import STOCKHOLM
from schemas.money import Period

MARGIN = dt.timedelta(days=1)
"""A run reads the visits within a day of its period (`run._near`); so does this purge."""


@purges("visit_versions", "period_months")
def past_correction(store: Store, tenant: str, policy: Policy, now: dt.datetime, dry_run: bool) -> int:
    """Purge (or, dry, count) the versions of the visits past every correction, oldest first."""
    boundary = _boundary(store, tenant, policy.period_months, now)
    if boundary is None:
        return 0
    edge = boundary - MARGIN
    taken, after = 0, None
    while True:
        with store.begin() as conn:
            query = select(VISIT_START.label("start"), visits.c.vendor, visits.c.visit_id, visits.c.version).where(
                visits.c.tenant == tenant, VISIT_START < edge
            )
            if after is not None:
                query = query.where(tuple_(VISIT_START, visits.c.vendor, visits.c.visit_id, visits.c.version) > after)
            rows = conn.execute(
                query.order_by(VISIT_START, visits.c.vendor, visits.c.visit_id, visits.c.version).limit(BATCH)
            ).all()
            if not rows:
                return taken
            after = tuple(rows[-1])
            for vendor, visit_ids in _by_vendor(rows).items():
                of_visits = and_(
                    visits.c.tenant == tenant, visits.c.vendor == vendor, among(conn, visits.c.visit_id, visit_ids)
                )
                reachable = set(  # another version of the visit, in a period still open to correction
                    conn.scalars(
                        select(visits.c.visit_id).where(of_visits, or_(VISIT_START.is_(None), VISIT_START >= edge))
                    )
                )
                gone = [visit_id for visit_id in visit_ids if visit_id not in reachable]
                if not gone:
                    continue
                whole = and_(visits.c.tenant == tenant, visits.c.vendor == vendor, among(conn, visits.c.visit_id, gone))
                if dry_run:
                    taken += int(conn.scalar(select(func.count()).where(whole)) or 0)
                else:
                    taken += conn.execute(delete(visits).where(whole)).rowcount


def _by_vendor(rows: list[Any]) -> dict[str, list[str]]:
    """The batch's visits (each once, whatever versions it holds) by vendor."""
    grouped: dict[str, dict[str, None]] = {}
    for row in rows:
        grouped.setdefault(row.vendor, {})[row.visit_id] = None
    return {vendor: list(visit_ids) for vendor, visit_ids in grouped.items()}


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
