"""The payroll runs in the console: the runs, and a run's totals per pay code and its file's
transfers for the review group, who approve it there."""

from __future__ import annotations

from pathlib import Path as FilePath

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from adapters.console import Console, Denied
from adapters.console.console import MAX_ID
from flows.payroll import run as payroll
from flows.payroll.queries import summary
from flows.payroll.tables import runs

APPROVE = "payroll.approve"


def add(console: Console) -> None:
    """Add the runs' pages to the console; approving is the review group's (role `review`)."""
    pages = APIRouter(prefix="/console/payroll", include_in_schema=False)
    hub = console.hub

    @pages.get("", response_class=HTMLResponse)
    def run_list(request: Request) -> Response:
        session, user = console.who(request)
        with hub.store.begin() as conn:
            found = conn.execute(select(runs).order_by(runs.c.id.desc()).limit(50)).all()
        return console.render(request, "payroll_runs.html", session, user, runs=found)

    @pages.get("/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: int = Path(ge=1, le=MAX_ID)) -> Response:
        session, user = console.who(request)
        try:
            found = summary(hub.store, run_id)  # counts and sums: no recipient on the page
        except LookupError as error:
            raise Denied(404, str(error)) from None
        return console.render(
            request, "payroll_run.html", session, user, run=found.run, totals=found.totals, transfers=found.transfers
        )

    @pages.post("/{run_id}/approve")
    async def approve(request: Request, run_id: int = Path(ge=1, le=MAX_ID)) -> Response:
        return await console.act(
            request, APPROVE, payroll.approve, hub.store, run_id, back=f"/console/payroll/{run_id}"
        )

    console.add(
        pages,
        templates=FilePath(__file__).parent / "templates",
        actions={APPROVE: {"review"}},
        menu=[("Payroll", "/console/payroll")],
    )
