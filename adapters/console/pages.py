"""The hub's own pages of the console: login, the overview, dead letters, transfers, schedules,
retention and the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from adapters.console.console import MAX_ID, Console, Denied, check_csrf
from adapters.console.session import COOKIE
from core import audit, deadletters, retention, scheduler, transfers, users
from core.errors import Rejected
from core.figures import figures
from core.paging import Page
from core.redaction import redact
from core.runtime import Hub
from core.store import utcnow
from schemas.identity import Personnummer


def pages(console: Console) -> APIRouter:
    """The routes of the hub's own pages."""
    pages = APIRouter(prefix="/console", include_in_schema=False)
    hub = console.hub

    @pages.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> Response:
        session = console.sessions.read(request) or console.sessions.new()
        response = console.render(request, "login.html", session, None, failed=False)
        console.sessions.write(response, session)
        return response

    @pages.post("/login")
    async def login(request: Request) -> Response:
        session = console.sessions.read(request)
        form = await request.form()
        check_csrf(form.get("csrf"), session)
        source = request.client.host if request.client else "unknown"
        user = await run_in_threadpool(
            users.authenticate, hub.store, str(form.get("name", ""))[:100], str(form.get("password", "")), source=source
        )
        if user is None:
            response = console.render(request, "login.html", session, None, failed=True)
            response.status_code = 401
            return response
        response = RedirectResponse("/console/", status_code=303)
        console.sessions.write(response, console.sessions.new(user.name))
        return response

    @pages.post("/logout")
    async def logout(request: Request) -> Response:
        await console.acting(request, None)
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    @pages.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> Response:
        session, user = console.who(request)
        return console.render(request, "overview.html", session, user, **_overview(console.hub))

    @pages.get("/dead-letters", response_class=HTMLResponse)
    def dead_letter_list(request: Request, status: str = "open", offset: int = Query(0, ge=0, le=MAX_ID)) -> Response:
        session, user = console.who(request)
        with hub.store.begin() as conn:
            found = deadletters.listing(
                conn, status=status if status in ("open", "replayed") else None, limit=50, offset=offset
            )
        for row in found.rows:
            row["reason"] = redact(row["reason"])
        return console.render(request, "dead_letters.html", session, user, page=found, status=status)

    @pages.get("/dead-letters/{letter_id}", response_class=HTMLResponse)
    def dead_letter(request: Request, letter_id: int = Path(ge=1, le=MAX_ID), reveal: bool = False) -> Response:
        session, user = console.who(request)
        if reveal:
            console.allow(user, "dead_letters.reveal")
        with hub.store.begin() as conn:
            letter = (
                deadletters.read(conn, letter_id, by=f"user:{user.name}")
                if reveal
                else deadletters.show(conn, letter_id)
            )
            if letter is None:
                raise Denied(404, f"no dead letter {letter_id}")
            text = _input_of(conn, letter)
        if not reveal:
            text, letter["reason"] = redact(text), redact(letter["reason"])
        return console.render(request, "dead_letter.html", session, user, letter=letter, raw=text, revealed=reveal)

    @pages.post("/dead-letters/replay")
    async def replay(request: Request) -> Response:
        user, form = await console.acting(request, "dead_letters.replay")
        results = []
        for value in form.get("id", []):
            if not (value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID):
                results.append((value[:20], False, "not a dead letter's number"))
                continue
            try:
                envelope = await run_in_threadpool(hub.replay, int(value), by=f"user:{user.name}")
                results.append((value, True, f"sent again as {envelope}"))
            except (LookupError, Rejected) as error:
                results.append((value, False, str(error)))
        session, _ = console.who(request)
        return console.render(request, "replayed.html", session, user, results=results)

    @pages.get("/schedules", response_class=HTMLResponse)
    def schedule_list(request: Request) -> Response:
        session, user = console.who(request)
        return console.render(request, "schedules.html", session, user, states=scheduler.listing(hub.store, hub.config))

    @pages.post("/schedules/{action}")
    async def schedule_change(request: Request, action: str) -> Response:
        user, form = await console.acting(request, "schedules.change")
        job, tenant, by = (form.get("job") or [""])[0], (form.get("tenant") or [""])[0], f"user:{user.name}"
        try:
            if action == "pause":
                await run_in_threadpool(scheduler.pause, hub.store, hub.config, job, tenant, by=by)
            elif action == "resume":
                await run_in_threadpool(scheduler.resume, hub.store, hub.config, job, tenant, by=by)
            elif action == "run":
                await run_in_threadpool(scheduler.run_now, hub.jobs, job, tenant, by=by)
                hub.relay.nudge()
            else:
                raise Denied(404, f"no action {action}")
        except Rejected as error:
            raise Denied(422, str(error)) from None
        return RedirectResponse("/console/schedules", status_code=303)

    @pages.get("/transfers", response_class=HTMLResponse)
    def transfer_list(
        request: Request, direction: str = Query("", pattern="^(in|out)?$"), offset: int = Query(0, ge=0, le=MAX_ID)
    ) -> Response:
        session, user = console.who(request)
        with hub.store.begin() as conn:
            found = transfers.listing(conn, direction=direction or None, limit=50, offset=offset)
        return console.render(request, "transfers.html", session, user, page=found, direction=direction)

    @pages.get("/retention", response_class=HTMLResponse)
    def retention_page(request: Request, plan: bool = False) -> Response:
        """The policy, the holds in force and the last purges of each tenant; with `plan`, also what
        a purge would take now (counted on demand: on a year of data the count takes a while)."""
        session, user = console.who(request)
        tenants = []
        for tenant in hub.config.tenants:
            with hub.store.begin() as conn:
                held = retention.holds_in_force(conn, tenant.code)
            due = retention.plan(hub.store, tenant) if plan else None
            tenants.append({"code": tenant.code, "policy": retention.policy_of(tenant), "holds": held, "due": due})
        return console.render(
            request,
            "retention.html",
            session,
            user,
            tenants=tenants,
            fields=retention.fields(),
            counted=retention.counted(),
            purges=retention.last_purges(hub.store, 10),
            planned=plan,
        )

    @pages.get("/audit", response_class=HTMLResponse)
    def audit_log(
        request: Request,
        actor: str = Query("", max_length=100),
        action: str = Query("", max_length=100),
        subject: str = Query("", max_length=200),
        offset: int = Query(0, ge=0, le=MAX_ID),
    ) -> Response:
        session, user = console.who(request)
        with hub.store.begin() as conn:  # the search is itself in the log
            found = audit.entries(
                conn,
                by=f"user:{user.name}",
                limit=50,
                offset=offset,
                subject=subject or None,
                actor=actor or None,
                action=action or None,
            )
        query = {"actor": actor, "action": action, "subject": subject}
        return console.render(request, "audit.html", session, user, page=found, query=query, person=None)

    @pages.post("/audit/person", response_class=HTMLResponse)
    async def audit_of_person(request: Request) -> Response:
        """Who touched a person's data: the personnummer is posted, never put in a URL (it would
        stay in browser histories and access logs), and the search is itself audited."""
        user, form = await console.acting(request, None)
        session, _ = console.who(request)
        text, offset = (form.get("person") or [""])[0][:20], (form.get("offset") or ["0"])[0]
        try:
            person = Personnummer.parse(text.strip())
        except ValueError as error:
            response = console.render(
                request, "audit.html", session, user, page=None, query={}, person=text, problem=str(error)
            )
            response.status_code = 422
            return response
        start = int(offset) if offset.isascii() and offset.isdigit() and int(offset) <= MAX_ID else 0

        def search() -> Page:
            with hub.store.begin() as conn:
                return audit.entries(conn, by=f"user:{user.name}", limit=50, offset=start, person=person.digits)

        found = await run_in_threadpool(search)
        return console.render(request, "audit.html", session, user, page=found, query={}, person=text)

    return pages


def _overview(hub: Hub) -> dict[str, Any]:
    """The figures of the overview (core.figures, as /metrics has them) and the next firings."""
    found = figures(hub.store, hub.bus)
    upcoming = sorted(
        (state for state in scheduler.listing(hub.store, hub.config) if state.next_at is not None),
        key=lambda state: state.next_at or utcnow(),
    )[:10]
    return {
        "flows": sorted({flow for flow, _ in found.hourly}),
        "hours": sorted({hour for _, hour in found.hourly}),
        "hourly": found.hourly,
        "backlog": found.backlog,
        "queues": found.queues,
        "failures": found.failures,
        "open_letters": found.open_letters,
        "upcoming": upcoming,
    }


def _input_of(conn: Connection, letter: dict[str, Any]) -> str:
    """What the failed step or intake was given, as text."""
    return deadletters.input_of(conn, letter).decode("utf-8", errors="replace")
