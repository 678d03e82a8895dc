"""What people read of a payroll run: its summary, and for review its lines per recipient with the
totals per pay code. Lines name recipients (personal data): the read is audited, and personnummer
are masked unless the reader may see them in full. The CLI calls these, and so will the console."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, select

from adapters.paxml import file_name
from core import audit
from core.config import HubConfig
from core.personal import mask, may_reveal
from core.store import Store
from core.transfers import transfers
from flows.payroll.tables import assignments, lines, runs
from schemas.money import Period


@dataclass(frozen=True)
class RunSummary:
    """A run, its totals per pay code (ordinary and correction lines apart), and its file's transfers."""

    run: dict[str, Any]
    totals: list[dict[str, Any]]
    """pay_code, correction (bool), lines, amount."""
    transfers: list[dict[str, Any]]


def summary(store: Store, run_id: int) -> RunSummary:
    """LookupError for no such run. Counts and sums only: nothing to audit."""
    with store.begin() as conn:
        run = _run(conn, run_id)
        correction = lines.c.for_period != run.period
        totals = [
            dict(row._mapping)
            for row in conn.execute(
                select(
                    lines.c.pay_code,
                    correction.label("correction"),
                    func.count().label("lines"),
                    func.sum(lines.c.amount).label("amount"),
                )
                .where(lines.c.run_id == run_id)
                .group_by(lines.c.pay_code, correction)
                .order_by(lines.c.pay_code, correction)
            )
        ]
        name = file_name(run.tenant, Period.parse(run.period), run_id)
        sent = [
            dict(row._mapping)
            for row in conn.execute(
                select(transfers)
                .where(transfers.c.tenant == run.tenant, transfers.c.name == name)
                .order_by(transfers.c.id)
            )
        ]
    return RunSummary(dict(run._mapping), totals, sent)


def review(
    store: Store, config: HubConfig, run_id: int, *, by: str, recipient: str | None = None, reveal: bool = False
) -> list[dict[str, Any]]:
    """The run's lines by recipient (with the name from the assignment's latest version), corrections
    after each recipient's ordinary lines; NotAllowed for a reveal `by` may not make."""
    with store.begin() as conn:
        run = _run(conn, run_id)
        if reveal:
            may_reveal(config, run.tenant, by)
        latest = (
            select(assignments.c.assignment_id, func.max(assignments.c.version).label("version"))
            .where(assignments.c.tenant == run.tenant)
            .group_by(assignments.c.assignment_id)
            .subquery()
        )
        names = (
            select(assignments.c.assignment_id, assignments.c.recipient_name)
            .join(
                latest,
                and_(latest.c.assignment_id == assignments.c.assignment_id, latest.c.version == assignments.c.version),
            )
            .where(assignments.c.tenant == run.tenant)
            .subquery()
        )
        query = (
            select(lines, names.c.recipient_name)
            .join(names, names.c.assignment_id == lines.c.assignment_id, isouter=True)
            .where(lines.c.run_id == run_id)
        )
        if recipient is not None:
            query = query.where(lines.c.recipient == recipient)
        found = [
            dict(row._mapping)
            for row in conn.execute(
                query.order_by(
                    lines.c.recipient,
                    lines.c.assignment_id,
                    lines.c.component,
                    lines.c.for_period != run.period,
                    lines.c.for_period,
                )
            )
        ]
        audit.record(
            conn,
            actor=by,
            action="payroll.read",
            tenant=run.tenant,
            subject=f"payroll-run:{run_id}",
            detail=("all lines" if recipient is None else "one recipient's lines")
            + (", personnummer in full" if reveal else ", personnummer masked"),
        )
    if not reveal:
        found = [line | {"recipient": mask(line["recipient"])} for line in found]
    return found


def _run(conn: Connection, run_id: int) -> Any:
    run = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    if run is None:
        raise LookupError(f"no payroll run {run_id}")
    return run
