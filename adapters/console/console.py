"""What every page of the console shares: who is logged in, what their role lets them do, the
CSRF check of a posted form, and rendering a template in the common layout.

The hub's own pages are in `pages.py`; a flow adds its pages (its runs to approve, say) with
`Console.add`: a router, its templates folder, the actions it guards and its place in the menu.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader

from adapters.console.session import Session, Sessions
from core import users
from core.errors import Rejected
from core.runtime import Hub
from schemas.identity import STOCKHOLM

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
MAX_ID = 2**63 - 1
"""The largest id a page takes (a BIGINT)."""


class Denied(Exception):
    """Not logged in (303: to the login page), not allowed (403), or not there (404, 422)."""

    def __init__(self, status: int, reason: str) -> None:
        self.status, self.reason = status, reason


class Console:
    """The console of one HTTP app. Every role may look at every page; `actions` says which roles
    may do what."""

    def __init__(self, app: FastAPI, hub: Hub) -> None:
        self.app, self.hub = app, hub
        secret = hub.settings.console_secret
        if secret is None:
            log.warning("CASEHUB_CONSOLE_SECRET is not set: console sessions end when this process stops")
        self.sessions = Sessions(secret or secrets.token_urlsafe(48), https=hub.settings.console_https)
        self._folders = [HERE / "templates"]
        self.templates = Jinja2Templates(directory=self._folders)
        self.templates.env.filters["local"] = local
        self.actions: dict[str, set[str]] = {}
        self.menu: list[tuple[str, str]] = []

    def add(
        self,
        router: APIRouter,
        *,
        templates: Path | None = None,
        actions: dict[str, set[str]] | None = None,
        menu: list[tuple[str, str]] | None = None,
    ) -> None:
        """Add pages: their routes, the folder of their templates, the actions they guard (name to
        roles) and their (label, path) entries in the menu."""
        if templates is not None:
            self._folders.append(templates)
            self.templates.env.loader = ChoiceLoader([FileSystemLoader(folder) for folder in self._folders])
        self.actions |= actions or {}
        self.menu += menu or []
        self.app.include_router(router)

    def render(
        self, request: Request, name: str, session: Session, user: users.User | None, **context: Any
    ) -> Response:
        allowed = {action for action, roles in self.actions.items() if user is not None and user.role in roles}
        response = self.templates.TemplateResponse(
            request, name, {"user": user, "csrf": session.csrf, "actions": allowed, "menu": self.menu, **context}
        )
        response.headers["cache-control"] = "no-store"
        return response

    def who(self, request: Request) -> tuple[Session, users.User]:
        """The session and its user; Denied(303) without a session or with a disabled user."""
        session = self.sessions.read(request)
        user = users.active(self.hub.store, session.user) if session and session.user else None
        if session is None or user is None:
            raise Denied(303, "log in")
        return session, user

    def allow(self, user: users.User, action: str) -> None:
        if user.role not in self.actions[action]:
            raise Denied(403, f"the role {user.role} may not do this")

    async def acting(self, request: Request, action: str | None) -> tuple[users.User, dict[str, list[str]]]:
        """The user and the form of a POST that does `action`: 403 without its role or without the
        session's CSRF token in the form."""
        session, user = await run_in_threadpool(self.who, request)
        form = await request.form()
        check_csrf(form.get("csrf"), session)
        if action is not None:
            self.allow(user, action)
        return user, {key: [str(value) for value in form.getlist(key)] for key in form}

    async def act(self, request: Request, action: str, do: Callable[..., object], *args: object, back: str) -> Response:
        """A guarded action on a page's object (a run to approve): `do(*args, by=user)` in a thread,
        404 when it finds no object (LookupError), 422 when it refuses (Rejected); then the relay
        is nudged to send what it put in the outbox, and the browser sent `back`."""
        user, _form = await self.acting(request, action)
        try:
            await run_in_threadpool(do, *args, by=f"user:{user.name}")
        except LookupError as error:
            raise Denied(404, str(error)) from None
        except Rejected as error:
            raise Denied(422, str(error)) from None
        self.hub.relay.nudge()
        return RedirectResponse(back, status_code=303)


def install(app: FastAPI, hub: Hub) -> Console:
    """Add the console with the hub's own pages to the HTTP app; flows add theirs to what it returns."""
    from adapters.console.pages import pages

    console = Console(app, hub)
    console.add(
        pages(console),
        actions={
            "dead_letters.replay": {"operations"},
            "dead_letters.reveal": {"operations"},
            "schedules.change": {"operations"},
        },
        menu=[
            ("Overview", "/console/"),
            ("Dead letters", "/console/dead-letters"),
            ("Transfers", "/console/transfers"),
            ("Schedules", "/console/schedules"),
            ("Retention", "/console/retention"),
            ("Audit log", "/console/audit"),
        ],
    )
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(Denied)
    async def denied(request: Request, error: Denied) -> Response:
        if error.status == 303:
            return RedirectResponse("/console/login", status_code=303)
        page = f"<!doctype html><title>casehub</title><p>{html.escape(error.reason)}</p><a href='/console/'>back</a>"
        return HTMLResponse(page, status_code=error.status)

    return console


def check_csrf(posted: object, session: Session | None) -> None:
    """Denied(403) unless the form posted the session's CSRF token (compared as bytes: any text may
    be posted, and `compare_digest` takes only ASCII in a str)."""
    if session is None or not secrets.compare_digest(str(posted or "").encode(), session.csrf.encode()):
        raise Denied(403, "the form's CSRF token is missing or not this session's")


def local(moment: dt.datetime | None) -> str:
    """A time as people here read it: Stockholm's, to the minute."""
    return "" if moment is None else f"{moment.astimezone(STOCKHOLM):%Y-%m-%d %H:%M}"
