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


def entries(conn: Connection, *, by: str, limit: int = 100, offset: int = 0, subject: str | None = None) -> Page:
    """The newest audit entries first, optionally for one subject. The log is personal data itself
    (who read whose): the read is audited, as `by`."""
    query = select(audit).order_by(audit.c.id.desc())
    if subject is not None:
        query = query.where(audit.c.subject == subject)
    found = page(conn, query, limit=limit, offset=offset)
    record(conn, actor=by, action="audit.read", subject=subject)
    return found
