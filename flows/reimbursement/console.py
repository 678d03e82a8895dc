"""The reimbursement runs in the console: the runs, and a run's findings by level and its
adjustments (who and why) for the review group, who approve it there."""

from __future__ import annotations

from pathlib import Path as FilePath

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from adapters.console import Console, Denied
from adapters.console.console import MAX_ID
from core.errors import Rejected
from flows.reimbursement import run as reimbursement
from flows.reimbursement.review import review
from flows.reimbursement.tables import adjustments, runs

APPROVE = "reimbursement.approve"


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
        user, _form = await console.acting(request, APPROVE)
        try:
            await run_in_threadpool(reimbursement.approve, hub.store, run_id, by=f"user:{user.name}")
        except LookupError as error:
            raise Denied(404, str(error)) from None
        except Rejected as error:
            raise Denied(422, str(error)) from None
        hub.relay.nudge()
        return RedirectResponse(f"/console/reimbursement/{run_id}", status_code=303)

    console.add(
        pages,
        templates=FilePath(__file__).parent / "templates",
        actions={APPROVE: {"review"}},
        menu=[("Reimbursement", "/console/reimbursement")],
    )
