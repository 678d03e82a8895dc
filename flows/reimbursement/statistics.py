"""The month's statistics for IT operations and the review group: hours ordered against hours
performed per provider and service category, and the visits' deviations by kind, from the
period's reimbursement runs.

Performed is what the approved runs of the period paid (a correction run's lines are differences,
so they add up), or the newest draft's lines while none is approved; ordered and the deviations
are the newest run's, which decides every visit of the period again.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from flows.reimbursement.review import LEVEL_OF
from flows.reimbursement.tables import findings, lines, ordered, runs


@dataclass(frozen=True)
class Hours:
    provider_org: str
    category: str
    ordered: float
    performed: float


@dataclass(frozen=True)
class Deviation:
    provider_org: str
    code: str
    level: str
    unpaid: int
    """Visits not paid for this reason (0 for a warning)."""
    warned: int
    """Paid visits with this warning."""


@dataclass(frozen=True)
class Statistics:
    tenant: str
    period: str
    approved: bool
    """Whether performed is what approved runs paid (else a draft's)."""
    hours: list[Hours]
    deviations: list[Deviation]


def periods(conn: Connection, tenant: str, *, limit: int = 24) -> list[str]:
    """The periods with a computed run, newest first."""
    query = (
        select(runs.c.period)
        .where(runs.c.tenant == tenant, runs.c.status != "computing")
        .group_by(runs.c.period)
        .order_by(runs.c.period.desc())
        .limit(limit)
    )
    return list(conn.scalars(query))


def of_month(conn: Connection, tenant: str, period: str) -> Statistics | None:
    """The statistics of a period, or None when it has no computed run."""
    done = conn.execute(
        select(runs.c.id, runs.c.status)
        .where(runs.c.tenant == tenant, runs.c.period == period, runs.c.status != "computing")
        .order_by(runs.c.id)
    ).all()
    if not done:
        return None
    newest = done[-1].id
    approved = [row.id for row in done if row.status == "approved"]
    paid_by = approved or [newest]
    performed = {
        (org, category): minutes or 0
        for org, category, minutes in conn.execute(
            select(lines.c.provider_org, lines.c.category, func.sum(lines.c.minutes + lines.c.adjusted_minutes))
            .where(lines.c.run_id.in_(paid_by))
            .group_by(lines.c.provider_org, lines.c.category)
        )
    }
    planned = {
        (org, category): minutes
        for org, category, minutes in conn.execute(
            select(ordered.c.provider_org, ordered.c.category, ordered.c.minutes).where(ordered.c.run_id == newest)
        )
    }
    hours = [
        Hours(org, category, ordered=planned.get(key, 0) / 60, performed=performed.get(key, 0) / 60)
        for key in sorted(planned.keys() | performed.keys())
        for org, category in [key]
    ]
    counted = conn.execute(
        select(findings.c.provider_org, findings.c.code, findings.c.paid, func.count())
        .where(findings.c.run_id == newest)
        .group_by(findings.c.provider_org, findings.c.code, findings.c.paid)
    ).all()
    by_kind: dict[tuple[str, str], list[int]] = {}
    for org, code, paid, count in counted:
        by_kind.setdefault((org, code), [0, 0])[1 if paid else 0] += count
    deviations = [
        Deviation(org, code, LEVEL_OF.get(code, "info"), unpaid, warned)
        for (org, code), (unpaid, warned) in sorted(by_kind.items())
    ]
    return Statistics(tenant, period, bool(approved), hours, deviations)


def as_csv(statistics: Statistics) -> str:
    """The statistics as a CSV file (semicolons and decimal commas, as Swedish spreadsheets read
    it): one row per provider and category, then one per provider and deviation."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["period", "provider_org", "what", "kind", "ordered_hours", "performed_hours", "unpaid", "warned"])
    for row in statistics.hours:
        writer.writerow(
            [statistics.period, row.provider_org, "hours", row.category, _decimal(row.ordered), _decimal(row.performed)]
            + ["", ""]
        )
    for deviation in statistics.deviations:
        writer.writerow(
            [statistics.period, deviation.provider_org, "deviation", deviation.code, "", ""]
            + [deviation.unpaid, deviation.warned]
        )
    return out.getvalue()


def _decimal(hours: float) -> str:
    return f"{hours:.2f}".replace(".", ",")
