"""The people who log in to the console: a name, one role, an argon2id password hash.

Roles: `operations` watches and mends (dead letters, schedules, transfers), `review` also approves
runs, `economy` sees the runs and statistics, `read` only looks. A login that fails MAX_FAILURES
times in a row locks the user for LOCKOUT; every login, failed login and change is audited.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select, update

from core import audit
from core.errors import Rejected
from core.store import Store, utcnow
from core.store.tables import users

Role = Literal["operations", "review", "economy", "read"]
ROLES: tuple[str, ...] = get_args(Role)
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
MIN_PASSWORD = 12
"""Characters a password has at least."""

_hasher = PasswordHasher()
_NOBODY = _hasher.hash("a password no user has")
"""Verified against when the name is unknown, so that the answer takes as long either way."""


@dataclass(frozen=True)
class User:
    name: str
    role: str


def add(store: Store, name: str, role: str, password: str, *, by: str) -> None:
    """A new user; Rejected if the name is taken, the role unknown or the password too short."""
    _check(role=role, password=password)
    if not name or len(name) > 100 or not name.isprintable() or name != name.strip():
        raise Rejected("a name of 1 to 100 printable characters, without surrounding spaces", where="name")
    with store.begin() as conn:
        if conn.scalar(select(users.c.name).where(users.c.name == name)) is not None:
            raise Rejected(f"user {name!r} exists", where="name")
        conn.execute(
            insert(users).values(
                name=name,
                role=role,
                password_hash=_hasher.hash(password),
                failed_logins=0,
                created_at=utcnow(),
                created_by=by,
            )
        )
        audit.record(conn, actor=by, action="user.add", subject=f"user:{name}", detail=role)


def set_password(store: Store, name: str, password: str, *, by: str) -> None:
    """A new password, which also lifts a lockout."""
    _check(password=password)
    with store.begin() as conn:
        changed = conn.execute(
            update(users)
            .where(users.c.name == name)
            .values(password_hash=_hasher.hash(password), failed_logins=0, locked_until=None)
        ).rowcount
        if not changed:
            raise Rejected(f"no user {name!r}", where="name")
        audit.record(conn, actor=by, action="user.password", subject=f"user:{name}")


def disable(store: Store, name: str, *, by: str) -> None:
    """The user can log in no more; a session of theirs ends at its next request."""
    with store.begin() as conn:
        changed = conn.execute(
            update(users).where(users.c.name == name, users.c.disabled_at.is_(None)).values(disabled_at=utcnow())
        ).rowcount
        if not changed:
            raise Rejected(f"no enabled user {name!r}", where="name")
        audit.record(conn, actor=by, action="user.disable", subject=f"user:{name}")


def authenticate(store: Store, name: str, password: str, *, source: str) -> User | None:
    """The user, if the password is theirs and they are neither disabled nor locked; audited
    either way (`source`: where the attempt came from, such as the client's address)."""
    now = utcnow()
    with store.begin() as conn:
        row = conn.execute(select(users).where(users.c.name == name).with_for_update()).first()
        matches = _verify(row.password_hash if row is not None else _NOBODY, password)
        if row is None or row.disabled_at is not None:
            audit.record(conn, actor=f"user:{name}"[:100], action="login.failed", detail=f"unknown user, {source}")
            return None
        if row.locked_until is not None and row.locked_until > now:
            audit.record(conn, actor=f"user:{name}", action="login.failed", detail=f"locked, {source}")
            return None
        if not matches:
            failures = row.failed_logins + 1
            locked = now + LOCKOUT if failures >= MAX_FAILURES else None
            conn.execute(
                update(users)
                .where(users.c.name == name)
                .values(failed_logins=0 if locked else failures, locked_until=locked)
            )
            reason = f"locked for {LOCKOUT}" if locked else f"wrong password ({failures} in a row)"
            audit.record(conn, actor=f"user:{name}", action="login.failed", detail=f"{reason}, {source}")
            return None
        conn.execute(update(users).where(users.c.name == name).values(failed_logins=0, locked_until=None))
        audit.record(conn, actor=f"user:{name}", action="login", detail=source)
        return User(row.name, row.role)


def active(store: Store, name: str) -> User | None:
    """The user of a session, unless disabled since it began."""
    with store.begin() as conn:
        row = conn.execute(select(users.c.name, users.c.role, users.c.disabled_at).where(users.c.name == name)).first()
    return User(row.name, row.role) if row is not None and row.disabled_at is None else None


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _check(*, role: str | None = None, password: str | None = None) -> None:
    if role is not None and role not in ROLES:
        raise Rejected(f"unknown role {role!r} (roles: {', '.join(ROLES)})", where="role")
    if password is not None and len(password) < MIN_PASSWORD:
        raise Rejected(f"a password has at least {MIN_PASSWORD} characters", where="password")
