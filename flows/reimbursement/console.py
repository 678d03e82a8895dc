"""The reimbursement runs in the console: the runs, and a run's findings by level and its
adjustments (who and why) for the review group, who approve it there; and the month's statistics
(hours ordered against performed, deviations by kind) drawn and as a CSV file."""

from __future__ import annotations

from pathlib import Path as FilePath

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from adapters.console import Console, Denied
from adapters.console.console import MAX_ID
from flows.reimbursement import run as reimbursement
from flows.reimbursement import statistics
from flows.reimbursement.review import review
from flows.reimbursement.tables import adjustments, runs

APPROVE = "reimbursement.approve"
TENANT = Query("", pattern="^([0-9]{4})?$")
PERIOD = Query("", pattern="^([0-9]{4}-(0[1-9]|1[0-2]))?$")


def add(console: Console) -> None:
    """Add the runs' pages to the console; approving is the review group's (role `review`)."""
    pages = APIRouter(prefix="/console/reimbursement", include_in_schema=False)
    hub = console.hub

    @pages.get("", response_class=HTMLResponse)
    def run_list(request: Request) -> Response:
        session, user = console.who(request)
        with hub.store.begin() as conn:
            found = conn.execute(select(runs).order_by(runs.c.id.desc()).limit(50)).all()
        return console.render(request, "reimbursement_runs.html", session, user, runs=found)

    @pages.get("/statistics", response_class=HTMLResponse)
    def statistics_page(request: Request, tenant: str = TENANT, period: str = PERIOD) -> Response:
        session, user = console.who(request)
        code, months, found = _statistics(tenant, period)
        return console.render(
            request, "statistics.html", session, user, tenant=code, tenants=_tenants(), months=months, stats=found
        )

    @pages.get("/statistics.csv")
    def statistics_csv(request: Request, tenant: str = TENANT, period: str = PERIOD) -> Response:
        console.who(request)
        code, _months, found = _statistics(tenant, period)
        if found is None:
            raise Denied(404, f"no computed run of {period or 'any period'} in tenant {code}")
        name = f"statistik_{found.tenant}_{found.period}.csv"
        return Response(
            statistics.as_csv(found).encode("utf-8-sig"),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
        )

    def _tenants() -> list[str]:
        return [tenant.code for tenant in hub.config.tenants]

    def _statistics(tenant: str, period: str) -> tuple[str, list[str], statistics.Statistics | None]:
        """The tenant (the first when none is given), its months with runs, and the month's
        statistics (the newest month when none is given)."""
        code = tenant or next(iter(_tenants()), "")
        with hub.store.begin() as conn:
            months = statistics.periods(conn, code)
            chosen = period or next(iter(months), "")
            return code, months, statistics.of_month(conn, code, chosen) if chosen else None

    @pages.get("/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: int = Path(ge=1, le=MAX_ID)) -> Response:
        session, user = console.who(request)
        with hub.store.begin() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
            changed = conn.execute(
                select(adjustments).where(adjustments.c.run_id == run_id).order_by(adjustments.c.id)
            ).all()
        if row is None:
            raise Denied(404, f"no reimbursement run {run_id}")
        found = review(hub.store, hub.config, run_id, by=f"user:{user.name}", limit=50)  # masked; audited
        return console.render(
            request, "reimbursement_run.html", session, user, run=row, review=found, adjustments=changed
        )

    @pages.post("/{run_id}/approve")
    async def approve(request: Request, run_id: int = Path(ge=1, le=MAX_ID)) -> Response:
        back = f"/console/reimbursement/{run_id}"
        return await console.act(request, APPROVE, reimbursement.approve, hub.store, run_id, back=back)

    console.add(
        pages,
        templates=FilePath(__file__).parent / "templates",
        actions={APPROVE: {"review"}},
        menu=[("Reimbursement", "/console/reimbursement"), ("Statistics", "/console/reimbursement/statistics")],
    )
