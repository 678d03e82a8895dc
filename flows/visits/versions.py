"""Visit versions, stored as they arrive from any channel: every version, with the time the hub got it.

A rejected visit (wrong, a conflict with a stored version, or a row the store cannot hold) never
stops the rest of its batch; a batch's rejections are kept as one dead letter with every reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, select, tuple_

from core import deadletters, messages
from core.store import Store, insert_ignore, is_outage, utcnow
from flows.visits.tables import visits
from schemas.envelope import Envelope, new_id
from schemas.visits import Visit, VisitRejection

T = TypeVar("T")


class PoisonBatch(Exception):
    """The store refused a batch as a whole, which spoils the transaction on PostgreSQL: store it
    again in a new transaction, row by row (`in_transaction` does), to find the rows it cannot hold."""


def in_transaction(db: Store, write: Callable[[Connection, bool], T]) -> T:
    """`write(conn, one_by_one)` in a transaction; after a PoisonBatch, once more in a new one, row by
    row. The fast way costs nothing extra (no savepoint) while no row is poison."""
    try:
        with db.begin() as conn:
            return write(conn, False)
    except PoisonBatch:
        with db.begin() as conn:
            return write(conn, True)


def store(
    conn: Connection,
    *,
    tenant: str,
    vendor: str,
    accepted: list[Visit],
    rejected: list[VisitRejection],
    raw: bytes | None,
    channel: str,
    where: list[str] | None = None,
    one_by_one: bool = False,
) -> list[VisitRejection]:
    """Store a batch as received (its bytes as one message) and each accepted visit version as a row;
    returns every rejection of the batch, the ones found here included.

    A version already stored with the same content is left as it was, so a replayed batch changes
    nothing; with other content it is a conflict (an edit needs a higher version), rejected. When
    the store refuses the batch, PoisonBatch; `one_by_one` then rejects each row the store cannot
    hold alone, named by `where` (e.g. a file's line), and stores the rest. The batch's rejections
    are kept as one dead letter holding every reason.
    """
    message_id = new_id()
    where = where or [f"visits[{i}]" for i in range(len(accepted))]
    rows = [_row(tenant, vendor, visit, message_id, utcnow()) for visit in accepted]
    refused = _insert_one_by_one(conn, rows) if one_by_one else _insert(conn, rows)
    rejected = rejected + [
        VisitRejection(visit_id=accepted[i].visit_id, reason=f"{where[i]}: {reason}") for i, reason in refused
    ]
    envelope = Envelope(
        id=message_id,
        type="visit.batch",
        tenant=tenant,
        source=vendor,
        payload={"channel": channel, "visits": len(accepted) - len(refused), "rejected": len(rejected)},
    )
    messages.accept(conn, [(envelope, raw)])
    if rejected:
        reasons = "\n".join(f"visit {r.visit_id or '?'}: {r.reason}" for r in rejected)
        deadletters.record(
            conn,
            step=f"visits.{channel}",
            kind="rejected",
            tenant=tenant,
            message_id=message_id,
            reason=f"{len(rejected)} visits of {vendor} rejected:\n{reasons}",
        )
    return rejected


def _insert(conn: Connection, rows: list[dict]) -> list[tuple[int, str]]:
    """Insert visit versions, skipping those already stored; (index, reason) of each conflict with a
    stored version. PoisonBatch when the store refuses the batch."""
    if not rows:
        return []
    try:
        inserted = _insert_all(conn, rows)
    except Exception as error:
        if is_outage(error):
            raise
        raise PoisonBatch(f"the store refused the batch ({type(error).__name__})") from error
    return _conflicts(conn, rows) if inserted < len(rows) else []


def _insert_all(conn: Connection, rows: list[dict]) -> int:
    """The rows inserted. On PostgreSQL through COPY into a temporary table and one INSERT ... ON
    CONFLICT DO NOTHING: several times faster than INSERTs."""
    if conn.dialect.name != "postgresql":
        return len(insert_ignore(conn, visits, rows, returning=[visits.c.version]).all())
    columns = [column.name for column in visits.columns]
    with conn.connection.driver_connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS visits_incoming (LIKE visits) ON COMMIT DELETE ROWS")
        with cursor.copy(f"COPY visits_incoming ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[name] for name in columns])
        cursor.execute("INSERT INTO visits SELECT * FROM visits_incoming ON CONFLICT DO NOTHING")
        return cursor.rowcount


def _insert_one_by_one(conn: Connection, rows: list[dict]) -> list[tuple[int, str]]:
    """The slow way, taken only after a PoisonBatch: each row alone, so that one poison row (a value
    the store cannot hold) is refused and the others stored."""
    refused = []
    for i, row in enumerate(rows):
        try:
            with conn.begin_nested():
                inserted = len(insert_ignore(conn, visits, row, returning=[visits.c.version]).all())
        except Exception as error:
            if is_outage(error):
                raise
            refused.append((i, f"the store cannot hold this visit ({type(error).__name__})"))
            continue
        if not inserted:
            refused += [(i, reason) for _, reason in _conflicts(conn, [row])]
    return refused


CONTENT = [column.name for column in visits.columns if column.name not in ("received_at", "message_id")]
"""What makes two stored versions the same: every column but when and in which message it came."""


def _conflicts(conn: Connection, rows: list[dict]) -> list[tuple[int, str]]:
    """(index, reason) of the rows whose key is stored with other content."""
    keys = [(row["tenant"], row["vendor"], row["visit_id"], row["version"]) for row in rows]
    key = tuple_(visits.c.tenant, visits.c.vendor, visits.c.visit_id, visits.c.version)
    stored = {}
    for start in range(0, len(keys), 500):
        query = select(*[visits.c[name] for name in CONTENT]).where(key.in_(keys[start : start + 500]))
        stored |= {tuple(found[:4]): tuple(found) for found in conn.execute(query)}
    return [
        (i, f"conflict: version {row['version']} is stored with other content; an edit needs a higher version")
        for i, row in enumerate(rows)
        if stored.get(keys[i]) not in (None, tuple(row[name] for name in CONTENT))
    ]


def _row(tenant: str, vendor: str, visit: Visit, message_id: str, now) -> dict:
    return {
        "tenant": tenant,
        "vendor": vendor,
        "visit_id": visit.visit_id,
        "version": visit.version,
        "received_at": now,
        "message_id": message_id,
        "provider_org": visit.provider_org.digits,
        "customer": visit.customer_pnr.digits,
        "employee_id": visit.employee_id,
        "planned_start": visit.planned_start,
        "planned_end": visit.planned_end,
        "actual_start": visit.actual_start,
        "actual_end": visit.actual_end,
        "confirmation": visit.confirmation,
        "tag_id": visit.tag_id,
        "manual_reason": visit.manual_reason,
        "services": ",".join(visit.services),
        "double_staffing": visit.double_staffing,
        "declined": visit.declined,
        "approved": visit.approved,
        "edit_reason": visit.edit_reason,
    }
