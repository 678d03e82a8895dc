"""The operations console under /console: server-rendered pages (Jinja2, one stylesheet, no
JavaScript needed) for IT operations to watch the hub, replay what failed and run its schedules.

Every page wants a logged-in user (else: the login page); every action wants its role (else: 403)
and the session's CSRF token in the form (else: 403). Personal data in kept input is masked until
a person reveals it, and the reveal is audited.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import secrets
from collections import Counter
from pathlib import Path as FilePath
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Connection, func, select

from adapters.console.session import COOKIE, Session, Sessions
from core import deadletters, scheduler, users
from core.errors import Rejected
from core.redaction import redact
from core.runtime import Hub
from core.store import utcnow
from core.store.tables import dead_letters, messages, outbox
from schemas.identity import STOCKHOLM

log = logging.getLogger(__name__)

HERE = FilePath(__file__).parent
MAX_ID = 2**63 - 1
ACTIONS = {
    "dead_letters.replay": {"operations"},
    "dead_letters.reveal": {"operations"},
    "schedules.change": {"operations"},
}
"""Who may do what; every role may look at every page."""


class Denied(Exception):
    """Not logged in (a redirect to the login page) or not allowed (403)."""

    def __init__(self, status: int, reason: str) -> None:
        self.status, self.reason = status, reason


def router(hub: Hub) -> tuple[APIRouter, StaticFiles]:
    """The console's routes, and its static files to mount at /console/static."""
    secret = hub.settings.console_secret
    if secret is None:
        log.warning("CASEHUB_CONSOLE_SECRET is not set: console sessions end when this process stops")
    sessions = Sessions(secret or secrets.token_urlsafe(48), https=hub.settings.console_https)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["local"] = _local
    pages = APIRouter(prefix="/console", include_in_schema=False)

    def render(request: Request, name: str, session: Session, user: users.User | None, **context: Any) -> Response:
        response = templates.TemplateResponse(
            request, name, {"user": user, "csrf": session.csrf, "actions": _allowed(user), **context}
        )
        response.headers["cache-control"] = "no-store"
        return response

    def who(request: Request) -> tuple[Session, users.User]:
        session = sessions.read(request)
        user = users.active(hub.store, session.user) if session and session.user else None
        if session is None or user is None:
            raise Denied(303, "log in")
        return session, user

    async def acting(request: Request, action: str | None) -> tuple[users.User, dict[str, list[str]]]:
        """The user and the form of a POST that does `action`: 403 without its role or without the
        session's CSRF token in the form."""
        session, user = await run_in_threadpool(who, request)
        form = await request.form()
        if not secrets.compare_digest(str(form.get("csrf", "")), session.csrf):
            raise Denied(403, "the form's CSRF token is missing or not this session's")
        if action is not None and user.role not in ACTIONS[action]:
            raise Denied(403, f"the role {user.role} may not do this")
        return user, {key: [str(value) for value in form.getlist(key)] for key in form}

    @pages.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> Response:
        session = sessions.read(request) or sessions.new()
        response = render(request, "login.html", session, None, failed=False)
        sessions.write(response, session)
        return response

    @pages.post("/login")
    async def login(request: Request) -> Response:
        session = sessions.read(request)
        form = await request.form()
        if session is None or not secrets.compare_digest(str(form.get("csrf", "")), session.csrf):
            raise Denied(403, "the form's CSRF token is missing or not this session's")
        source = request.client.host if request.client else "unknown"
        user = await run_in_threadpool(
            users.authenticate, hub.store, str(form.get("name", ""))[:100], str(form.get("password", "")), source=source
        )
        if user is None:
            response = render(request, "login.html", session, None, failed=True)
            response.status_code = 401
            return response
        response = RedirectResponse("/console/", status_code=303)
        sessions.write(response, sessions.new(user.name))
        return response

    @pages.post("/logout")
    async def logout(request: Request) -> Response:
        await acting(request, None)
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    @pages.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> Response:
        session, user = who(request)
        return render(request, "overview.html", session, user, **_overview(hub))

    @pages.get("/dead-letters", response_class=HTMLResponse)
    def dead_letter_list(request: Request, status: str = "open", offset: int = Query(0, ge=0, le=MAX_ID)) -> Response:
        session, user = who(request)
        with hub.store.begin() as conn:
            found = deadletters.listing(
                conn, status=status if status in ("open", "replayed") else None, limit=50, offset=offset
            )
        for row in found.rows:
            row["reason"] = redact(row["reason"])
        return render(request, "dead_letters.html", session, user, page=found, status=status)

    @pages.get("/dead-letters/{letter_id}", response_class=HTMLResponse)
    def dead_letter(request: Request, letter_id: int = Path(ge=1, le=MAX_ID), reveal: bool = False) -> Response:
        session, user = who(request)
        if reveal and user.role not in ACTIONS["dead_letters.reveal"]:
            raise Denied(403, f"the role {user.role} may not reveal personal data")
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
        return render(request, "dead_letter.html", session, user, letter=letter, raw=text, revealed=reveal)

    @pages.post("/dead-letters/replay")
    async def replay(request: Request) -> Response:
        user, form = await acting(request, "dead_letters.replay")
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
        session, _ = who(request)
        return render(request, "replayed.html", session, user, results=results)

    @pages.get("/schedules", response_class=HTMLResponse)
    def schedule_list(request: Request) -> Response:
        session, user = who(request)
        return render(request, "schedules.html", session, user, states=scheduler.listing(hub.store, hub.config))

    @pages.post("/schedules/{action}")
    async def schedule_change(request: Request, action: str) -> Response:
        user, form = await acting(request, "schedules.change")
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

    return pages, StaticFiles(directory=HERE / "static")


def install(app: Any, hub: Hub) -> None:
    """Add the console to the hub's HTTP app."""
    pages, static = router(hub)
    app.include_router(pages)
    app.mount("/console/static", static, name="console-static")

    @app.exception_handler(Denied)
    async def denied(request: Request, error: Denied) -> Response:
        if error.status == 303:
            return RedirectResponse("/console/login", status_code=303)
        page = f"<!doctype html><title>casehub</title><p>{html.escape(error.reason)}</p><a href='/console/'>back</a>"
        return HTMLResponse(page, status_code=error.status)


def _overview(hub: Hub) -> dict[str, Any]:
    """The figures of the overview: messages per flow per hour, backlog, failures, next firings."""
    since = utcnow() - dt.timedelta(hours=24)
    with hub.store.begin() as conn:
        hourly: Counter[tuple[str, dt.datetime]] = Counter()
        for kind, at in conn.execute(
            select(messages.c.type, messages.c.stored_at).where(messages.c.stored_at >= since)
        ):
            hourly[(kind.split(".", 1)[0], at.astimezone(STOCKHOLM).replace(minute=0, second=0, microsecond=0))] += 1
        backlog = conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None)))
        failures = dict(
            conn.execute(
                select(dead_letters.c.kind, func.count())
                .where(dead_letters.c.failed_at >= since)
                .group_by(dead_letters.c.kind)
            ).all()
        )
        open_letters = conn.scalar(
            select(func.count()).select_from(dead_letters).where(dead_letters.c.status == "open")
        )
    flows = sorted({flow for flow, _ in hourly})
    hours = sorted({hour for _, hour in hourly})
    upcoming = sorted(
        (state for state in scheduler.listing(hub.store, hub.config) if state.next_at is not None),
        key=lambda state: state.next_at or utcnow(),
    )[:10]
    return {
        "flows": flows,
        "hours": hours,
        "hourly": hourly,
        "backlog": backlog,
        "failures": failures,
        "open_letters": open_letters,
        "upcoming": upcoming,
    }


def _input_of(conn: Connection, letter: dict[str, Any]) -> str:
    """What the failed step or intake was given: the bytes kept with the dead letter, or else the
    stored message's (as received, or the envelope the hub made)."""
    raw = letter.pop("raw")
    if raw is None and letter["message_id"]:
        row = conn.execute(
            select(messages.c.raw, messages.c.envelope).where(messages.c.id == letter["message_id"])
        ).first()
        raw = (row.raw or row.envelope.encode()) if row is not None else None
    return (raw or b"").decode("utf-8", errors="replace")


def _allowed(user: users.User | None) -> set[str]:
    return {action for action, roles in ACTIONS.items() if user is not None and user.role in roles}


def _local(moment: dt.datetime | None) -> str:
    return "" if moment is None else f"{moment.astimezone(STOCKHOLM):%Y-%m-%d %H:%M}"
