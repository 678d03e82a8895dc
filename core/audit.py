"""The audit log: who read or sent whose data, and when. The log itself is personal data.

An entry names its subject by reference (a message, a run), never by personnummer. The persons
whose data it touched are indexed by `person_key`, a keyed hash of the number, so that the log can
be searched by person ("who looked at this client?") while it holds no number itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Iterable
from functools import cache

from sqlalchemy import Connection, insert, select

from core.paging import Page, page
from core.redaction import PERSONNUMMER
from core.settings import Settings
from core.store import utcnow
from core.store.tables import audit, audit_persons

log = logging.getLogger(__name__)

DEVELOPMENT_KEY = "casehub development audit key, for a laptop only"


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    subject: str | None = None,
    tenant: str | None = None,
    detail: str | None = None,
    persons: Iterable[str] = (),
) -> None:
    """Write one audit entry in the caller's transaction. `subject` is a reference, never a
    personnummer; `persons` are the personnummer (any form) whose data the action touched."""
    keys = {person_key(person) for person in persons}
    entry = conn.execute(
        insert(audit)
        .values(at=utcnow(), tenant=tenant, actor=actor, action=action, subject=subject, detail=detail)
        .returning(audit.c.id)
    ).scalar_one()
    if keys:
        conn.execute(insert(audit_persons), [{"audit_id": entry, "person": key} for key in sorted(keys)])


def persons_in(text: str) -> set[str]:
    """The personnummer-shaped numbers in `text` (a message, a dead letter's bytes), for `record`."""
    return {match[0] for match in PERSONNUMMER.finditer(text)}


def person_key(personnummer: str) -> str:
    """The key of a person in the log: an HMAC of the number's last ten digits, so that every form
    of it (with or without century or separator) gives the same key."""
    digits = re.sub(r"\D", "", personnummer)[-10:]
    return hmac.new(_key(), digits.encode(), hashlib.sha256).hexdigest()


@cache
def _key() -> bytes:
    key = Settings().audit_key
    if key is None:
        log.warning("CASEHUB_AUDIT_KEY is not set: the audit log's index of persons uses the development key")
    return (key or DEVELOPMENT_KEY).encode()


def entries(
    conn: Connection,
    *,
    by: str,
    limit: int = 100,
    offset: int = 0,
    subject: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    person: str | None = None,
) -> Page:
    """The newest audit entries first, of one subject, actor, action or person (a personnummer) if
    given. The log is personal data itself (who read whose): the read is audited, as `by`, with
    what was searched for; a person searched for is in the read's own index, not in its text."""
    query = select(audit).order_by(audit.c.id.desc())
    if subject is not None:
        query = query.where(audit.c.subject == subject)
    if actor is not None:
        query = query.where(audit.c.actor == actor)
    if action is not None:
        query = query.where(audit.c.action == action)
    if person is not None:
        touched = select(audit_persons.c.audit_id).where(audit_persons.c.person == person_key(person))
        query = query.where(audit.c.id.in_(touched))
    found = page(conn, query, limit=limit, offset=offset)
    searched = [f"{name} {value}" for name, value in (("actor", actor), ("action", action)) if value]
    if person is not None:
        searched.append("a person")
    record(
        conn,
        actor=by,
        action="audit.read",
        subject=subject,
        detail=", ".join(searched) or None,
        persons=[person] if person else (),
    )
    return found
