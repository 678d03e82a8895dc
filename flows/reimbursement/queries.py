"""What people read of a run: its basis (totals and lines), each read audited, the personnummer
masked unless the reader is one the tenant allows to see it in full (`personal_data_readers`).
The CLI calls these, and so will the console."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from core import audit
from core.config import HubConfig
from core.personal import mask, may_reveal
from core.store import Store
from flows.reimbursement.tables import lines, runs


@dataclass(frozen=True)
class Basis:
    """A run, its total per provider, and (when asked for) its lines."""

    run: dict
    totals: list[dict]
    """provider_org, lines, minutes, amount."""
    lines: list[dict]
    """provider_org, customer, category, band, rate, minutes, adjusted_minutes, amount."""


def basis(
    store: Store, config: HubConfig, run_id: int, *, by: str, with_lines: bool = True, reveal: bool = False
) -> Basis:
    """The run's basis; LookupError for no such run, NotAllowed for a reveal `by` may not make."""
    with store.begin() as conn:
        run = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if run is None:
            raise LookupError(f"no run {run_id}")
        if reveal:
            may_reveal(config, run.tenant, by)
        totals = [
            dict(row._mapping)
            for row in conn.execute(
                select(
                    lines.c.provider_org,
                    func.count().label("lines"),
                    func.sum(lines.c.minutes + lines.c.adjusted_minutes).label("minutes"),
                    func.sum(lines.c.amount).label("amount"),
                )
                .where(lines.c.run_id == run_id)
                .group_by(lines.c.provider_org)
                .order_by(lines.c.provider_org)
            )
        ]
        found = []
        if with_lines:
            found = [
                dict(row._mapping)
                for row in conn.execute(
                    select(
                        lines.c.provider_org,
                        lines.c.customer,
                        lines.c.category,
                        lines.c.band,
                        lines.c.rate,
                        lines.c.minutes,
                        lines.c.adjusted_minutes,
                        lines.c.amount,
                    )
                    .where(lines.c.run_id == run_id)
                    .order_by(lines.c.provider_org, lines.c.customer, lines.c.category, lines.c.band, lines.c.rate)
                )
            ]
            audit.record(
                conn,
                actor=by,
                action="reimbursement.read",
                tenant=run.tenant,
                subject=f"run:{run_id}",
                detail="lines, personnummer in full" if reveal else "lines, personnummer masked",
            )
    if not reveal:
        found = [line | {"customer": mask(line["customer"])} for line in found]
    return Basis(dict(run._mapping), totals, found)
