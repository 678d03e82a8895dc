"""The console's session: a signed cookie (HttpOnly, SameSite=Strict, under /console) holding the
user's name and the session's CSRF token, which every form posts back."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "casehub_console"
MAX_AGE = 8 * 3600
"""Seconds a session lasts: a working day."""


@dataclass(frozen=True)
class Session:
    user: str | None
    """None before login: the session then only carries the login form's CSRF token"""
    csrf: str


class Sessions:
    """Reads and writes sessions signed with `secret`; a cookie signed with any other is no session."""

    def __init__(self, secret: str, *, https: bool) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="casehub-console-session")
        self._https = https

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._signer.loads(raw, max_age=MAX_AGE)
        except BadSignature:  # SignatureExpired included
            return None
        if not (isinstance(data, dict) and isinstance(data.get("csrf"), str)):
            return None
        user = data.get("user")
        return Session(user if isinstance(user, str) else None, data["csrf"])

    def write(self, response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            self._signer.dumps({"user": session.user, "csrf": session.csrf}),
            max_age=MAX_AGE,
            path="/console",
            httponly=True,
            samesite="strict",
            secure=self._https,
        )

    @staticmethod
    def new(user: str | None = None) -> Session:
        """A fresh session: a new CSRF token at every login, so a token seen before it is worth nothing."""
        return Session(user, secrets.token_urlsafe(32))
