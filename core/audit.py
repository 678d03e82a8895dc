"""The audit log: who read or sent whose data, and when. The log itself is personal data."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from core.paging import Page, page
from core.store import utcnow
from core.store.tables import audit


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    subject: str | None = None,
    tenant: str | None = None,
    detail: str | None = None,
) -> None:
    """Write one audit entry in the caller's transaction. `subject` is a reference, never a personnummer."""
    conn.execute(
        insert(audit).values(at=utcnow(), tenant=tenant, actor=actor, action=action, subject=subject, detail=detail)
    )


def entries(
    conn: Connection,
    *,
    by: str,
    limit: int = 100,
    offset: int = 0,
    subject: str | None = None,
    actor: str | None = None,
    action: str | None = None,
) -> Page:
    """The newest audit entries first, of one subject, actor or action if given. The log is personal
    data itself (who read whose): the read is audited, as `by`, with what was searched for."""
    query = select(audit).order_by(audit.c.id.desc())
    if subject is not None:
        query = query.where(audit.c.subject == subject)
    if actor is not None:
        query = query.where(audit.c.actor == actor)
    if action is not None:
        query = query.where(audit.c.action == action)
    found = page(conn, query, limit=limit, offset=offset)
    searched = ", ".join(f"{name} {value}" for name, value in (("actor", actor), ("action", action)) if value)
    record(conn, actor=by, action="audit.read", subject=subject, detail=searched or None)
    return found
