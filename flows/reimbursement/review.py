"""What a reviewer (the granskningsgrupp) reads of a run: its findings by level.

`high`: the visit is not paid (every reason); `medium`: it is paid less than reported;
`low`: it is paid as reported but was confirmed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy import case, func, select

from core import audit
from core.config import HubConfig
from core.errors import Rejected
from core.paging import Page, page
from core.personal import mask, may_reveal
from core.store import Store
from flows.reimbursement.tables import findings, runs
from schemas.reimbursement import Reason

Level = Literal["high", "medium", "low"]
LEVELS: tuple[Level, ...] = get_args(Level)
LEVEL_OF: dict[str, Level] = {reason: "high" for reason in get_args(Reason)} | {
    "over_ordered": "medium",
    "double_staffing_not_granted": "medium",
    "manual": "low",
}


@dataclass(frozen=True)
class Review:
    """Findings counted as (level, provider, code, visits), then the findings themselves, the
    highest level first."""

    counts: list[tuple[Level, str, str, int]]
    findings: Page


def review(
    store: Store,
    config: HubConfig,
    run_id: int,
    *,
    by: str,
    provider: str | None = None,
    at_least: Level = "low",
    limit: int = 50,
    offset: int = 0,
    reveal: bool = False,
) -> Review:
    """The run's findings at `at_least` level and above (of one provider, or all); the read is audited.
    The customer's personnummer is masked unless `reveal`, which only the tenant's
    `personal_data_readers` may ask for."""
    if at_least not in LEVELS:
        raise Rejected(f"a level is one of {', '.join(LEVELS)}, not {at_least!r}", where="level")
    codes = [code for code, level in LEVEL_OF.items() if LEVELS.index(level) <= LEVELS.index(at_least)]
    rank = case({code: LEVELS.index(level) for code, level in LEVEL_OF.items()}, value=findings.c.code)
    where = [findings.c.run_id == run_id, findings.c.code.in_(codes)]
    if provider:
        where.append(findings.c.provider_org == provider)
    with store.begin() as conn:
        tenant = conn.scalar(select(runs.c.tenant).where(runs.c.id == run_id))
        if tenant is None:
            raise LookupError(f"no run {run_id}")
        if reveal:
            may_reveal(config, tenant, by)
        counts = conn.execute(
            select(findings.c.provider_org, findings.c.code, func.count())
            .where(*where)
            .group_by(findings.c.provider_org, findings.c.code)
        ).all()
        found = page(
            conn,
            select(findings)
            .where(*where)
            .order_by(rank, findings.c.provider_org, findings.c.code, findings.c.visit_id, findings.c.id),
            limit=limit,
            offset=offset,
        )
        audit.record(
            conn,
            actor=by,
            action="reimbursement.review",
            tenant=tenant,
            subject=f"run:{run_id}",
            detail=f"level {at_least} and above"
            + (f", provider {provider}" if provider else "")
            + (", personnummer in full" if reveal else ""),
            persons=[row["customer"] for row in found.rows],
        )
    if not reveal:
        found = Page([row | {"customer": mask(row["customer"])} for row in found.rows], found.total, found.offset)
    counted = sorted(
        ((LEVEL_OF[code], org, code, count) for org, code, count in counts),
        key=lambda row: (LEVELS.index(row[0]), row[1], row[2]),
    )
    return Review(counted, found)
