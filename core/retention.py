"""Retention: how long the store keeps each kind of record, and the purge that takes what is past it.

The case system is the record and the hub a transit: what it keeps of social-services data it
keeps only while it is needed. Each tenant's `[tenants.retention]` table (`Policy`, with these
defaults) says how long after its business is done each kind is kept:

- messages (`message_days`, 90): the bytes and envelope of a message, counted from the last of its
  storing, its deliveries and its steps' work, and its dead letters' resolution. Never while a
  delivery or a step is still to come, a dead letter of it is open, or a flow still needs it
  (`keeps`). A purged message's row is deleted; its narrow row in the ledger (id, tenant, type,
  time, the SHA-256 of its bytes and of its document), written as it was stored, stays as its
  tombstone, so that a late duplicate is still answered as one.
- dispatches (`dispatch_days`, 30): sent deliveries to steps, and the steps' processed keys.
- dead letters (`dead_letter_days`, 90 after resolution): their bytes; the row stays, so that a
  replay says its bytes are gone. An open dead letter is never purged.
- transfers (`transfer_days`, 2 years): the metadata of the files in and out.
- audit (`audit_days`, 3 years): the log of who read and sent what; the tombstones of purged
  messages go as long after their purge (`LATE`), so that what the log names still resolves.
- the flows' own kinds (`purges`): visit versions `period_months` (13) after the last run of
  their period was approved.

A legal hold (`hold`) keeps a person's or a case's messages, dead letters and audit entries from
every purge until it is released. The purge (`purge`, the job `retention.purge`, nightly) works
in batches of `BATCH`, each its own short transaction with a rest after it (`PAUSE`), and
records what it took per kind.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import (
    ColumnClause,
    Connection,
    Select,
    and_,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)

from core import audit
from core.config import Tenant, section
from core.errors import Rejected
from core.messages import OUT
from core.scheduler import JobContext, scheduled
from core.store import Store, among, utcnow
from core.store.tables import (
    STEP_DELIVERY,
    audit_persons,
    dead_letters,
    holds,
    ledger,
    outbox,
    processed,
)
from core.store.tables import audit as audit_log
from core.store.tables import messages as message_rows
from core.store.tables import purges as purge_rows
from core.transfers import transfers
from schemas.identity import Personnummer

log = logging.getLogger(__name__)

BATCH = 5000
"""Records taken in one transaction: a tenth of a second, never a long lock (of 2 000, the
transactions' own work was a tenth of a month's purge)."""
DAYS = {
    "messages": "message_days",
    "dispatches": "dispatch_days",
    "dead_letters": "dead_letter_days",
    "transfers": "transfer_days",
    "audit": "audit_days",
}
"""Each kind of record, and the policy's field that says how long it is kept."""
KINDS = tuple(DAYS)
LATE = dt.timedelta(days=30)
"""A message purged more than this after its time by its storing (`message_days` on), held or
needed by a long flow, has its purge written to its ledger row, so that its tombstone is kept the
audit log's time after it. The others are not (a write to a random place of the ledger's index for
each message was the purge's largest cost): their tombstones are kept that long after
`message_days` and `LATE` on from their storing, when they were purged at the latest."""
NEAR = dt.timedelta(hours=1)
"""How far from its delivery's sending a step's key is first looked for (`_take_dispatches`): a
step claims its key within seconds of the delivery, unless it was retried or its queue was long."""
PAUSE = 0.1
"""After each batch the purge rests this share of the batch's time, as autovacuum's cost delay
does, so that what comes in meanwhile keeps most of the store's time."""
FLOORS = {
    "dispatch_days": (7, "days", "forget that a step was done while its message may still be redelivered"),
    "period_months": (13, "months", "purge the visits of a period that a correction may still reach"),
}
"""The least a policy may keep what a pending flow still needs: a processed key must outlive every
redelivery of its message (the broker's and the retries' windows are hours; a week leaves room for
an outage), and a period's visits the 13 months a correction run may come in."""


class Policy(BaseModel):
    """A tenant's retention, in days (visit versions in months) after a record's business is done
    (see the module)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_days: int = Field(90, ge=1)
    dispatch_days: int = 30
    dead_letter_days: int = Field(90, ge=1)
    transfer_days: int = Field(730, ge=1)
    audit_days: int = Field(1095, ge=1)
    period_months: int = Field(13, description="visit versions: months after the last run of their period was approved")

    @field_validator(*FLOORS)
    @classmethod
    def _not_too_soon(cls, value: int, info: ValidationInfo) -> int:
        floor, unit, why = FLOORS[str(info.field_name)]
        if value < floor:
            raise ValueError(f"{value} {unit} would {why}; at least {floor}")
        return value


policy_of = section("tenant", "retention", Policy)

FlowPurge = Callable[[Store, str, Policy, dt.datetime, bool], int]
"""A flow's purge of its own kind: (store, tenant, policy, now, dry_run) to the records it took,
or with dry_run would take."""
_flow_purges: dict[str, FlowPurge] = {}
_flow_fields: dict[str, str] = {}


def purges(kind: str, field: str) -> Callable[[FlowPurge], FlowPurge]:
    """Register a flow's purge of a kind of its own (visit versions past their period's
    correction window), kept as long as the policy's `field` says; every purge runs it after
    core's kinds."""

    def register(purge: FlowPurge) -> FlowPurge:
        _flow_purges[kind], _flow_fields[kind] = purge, field
        return purge

    return register


def fields() -> dict[str, str]:
    """Each kind, core's and the flows', and the policy's field that says how long it is kept."""
    return DAYS | _flow_fields


def counted() -> tuple[str, ...]:
    """What a purge counts: core's kinds, the flows' kinds, the tombstones that went after the
    audit log's time, and the records a hold kept."""
    return (*KINDS, *_flow_purges, "tombstones", "held")


NeededMessages = Callable[[str], Select[Any]]
"""Given a tenant, a query of the ids of the messages a flow still needs."""
_keeps: list[NeededMessages] = []


def keeps(needed: NeededMessages) -> NeededMessages:
    """Register a flow's query of the messages it still needs (an order not yet acknowledged);
    the purge never takes them."""
    _keeps.append(needed)
    return needed


@contextmanager
def paced(store: Store) -> Iterator[Connection]:
    """One batch's transaction, and after it a rest of `PAUSE` of its time. On PostgreSQL it
    commits without waiting for its WAL to reach the disk: a crash may lose the last batches
    purged, never half of one, and the next purge takes them again."""
    began = time.monotonic()
    with store.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        yield conn
    time.sleep((time.monotonic() - began) * PAUSE)


# --- legal holds ---------------------------------------------------------------------------------


def hold(
    conn: Connection, *, tenant: str, person: str | None = None, case: str | None = None, reason: str, by: str
) -> int:
    """Keep a person's (by personnummer) or a case's (by its reference) records from every purge
    until released; audited. Returns the hold's id."""
    if (person is None) == (case is None):
        raise Rejected("hold either a person or a case", where="hold")
    if not reason.strip():
        raise Rejected("a hold needs its reason (the complaint, the court case)", where="reason")
    if person is not None:  # a mistyped number would hold nobody, silently
        try:
            Personnummer.parse(person)
        except ValueError as error:
            raise Rejected(str(error), where="person") from None
    kind, subject = ("person", audit.person_key(person)) if person is not None else ("case", str(case))
    hold_id = conn.execute(
        insert(holds)
        .values(tenant=tenant, kind=kind, subject=subject, reason=reason, held_at=utcnow(), held_by=by)
        .returning(holds.c.id)
    ).scalar_one()
    audit.record(
        conn,
        actor=by,
        action="retention.hold",
        tenant=tenant,
        subject=f"hold:{hold_id}" if kind == "person" else f"case:{case}",
        detail=reason,
        persons=[person] if person else (),
    )
    return int(hold_id)


def release(conn: Connection, hold_id: int, *, tenant: str, by: str) -> None:
    """End a hold: the next purge takes what it kept, if the policy says so. Audited."""
    found = conn.execute(
        update(holds)
        .where(holds.c.id == hold_id, holds.c.tenant == tenant, holds.c.released_at.is_(None))
        .values(released_at=utcnow(), released_by=by)
    )
    if not found.rowcount:
        raise Rejected(f"no hold {hold_id} in force for tenant {tenant}", where="hold")
    audit.record(conn, actor=by, action="retention.release", tenant=tenant, subject=f"hold:{hold_id}")


def holds_in_force(conn: Connection, tenant: str) -> list[dict[str, Any]]:
    query = select(holds).where(holds.c.tenant == tenant, holds.c.released_at.is_(None)).order_by(holds.c.id)
    return [dict(row._mapping) for row in conn.execute(query)]


class _Held:
    """Whether a record's text names a person or a case under a hold."""

    def __init__(self, in_force: Iterable[dict[str, Any]]) -> None:
        self.persons = {h["subject"] for h in in_force if h["kind"] == "person"}
        self.cases = {h["subject"] for h in in_force if h["kind"] == "case"}

    def __bool__(self) -> bool:
        return bool(self.persons or self.cases)

    def names(self, text: str) -> bool:
        if any(case in text for case in self.cases):
            return True
        return bool(self.persons) and any(audit.person_key(p) in self.persons for p in audit.persons_in(text))


# --- what is due ---------------------------------------------------------------------------------


def _address(table: Any, conn: Connection) -> ColumnClause[Any]:
    """Where a row of `table` is (PostgreSQL's ctid, SQLite's rowid): read straight, without a
    lookup by key, and valid within the statement that read it."""
    return literal_column(f"{table.name}.{'ctid' if conn.dialect.name == 'postgresql' else 'rowid'}")


class _Batch(NamedTuple):
    """A batch of messages: a condition on their rows, the keyset (stored_at, id) of the last of
    them, and the time of storing they start from (the keyset's before them; None for the first)."""

    rows: Any
    last: tuple[dt.datetime, str]
    since: dt.datetime | None


def _next_batch(
    conn: Connection, tenant: str, cutoff: dt.datetime, after: tuple[dt.datetime, str] | None
) -> _Batch | None:
    """The next `BATCH` of the tenant's messages stored before `cutoff`, oldest first, after the
    keyset `after` (stored_at, id); None when there are no more. Found by the index, and judged in
    SQL (`_over`), so that no list of ids goes to the store and back."""
    m = message_rows.c
    older = and_(m.tenant == tenant, m.stored_at < cutoff)
    if after is not None:
        older = and_(older, tuple_(m.stored_at, m.id) > tuple_(*after))  # a row comparison: by the index
    batch = select(m.stored_at, m.id).where(older).order_by(m.stored_at, m.id).limit(BATCH)
    taken = batch.subquery()
    last = conn.execute(select(taken).order_by(taken.c.stored_at.desc(), taken.c.id.desc()).limit(1)).first()
    if last is None:
        return None
    # by its ids, with its LIMIT: PostgreSQL then plans for a batch, where a range by row
    # comparison was estimated as much of the table (and its checks planned as scans of it all);
    # there, by the rows' addresses, which it reads straight (a TID scan) without a lookup by key
    key = _address(message_rows, conn) if conn.dialect.name == "postgresql" else m.id
    rows = key.in_(batch.with_only_columns(key).scalar_subquery())
    return _Batch(rows, (last.stored_at, last.id), after[0] if after is not None else None)


def _over(tenant: str, cutoff: dt.datetime, batch: _Batch) -> Any:
    """Whether a message of `batch` had its business over before `cutoff`: no delivery of it unsent,
    sent since, or to a step not done with it before then; no dead letter of it open or resolved
    since; and no flow that still needs it (`keeps`).

    Its deliveries are found by their message's time of storing, which each carries
    (`outbox.stored_at`): one range of an index for the whole batch, read once and looked up as a
    set (PostgreSQL's hashed subplan), where a probe of the deliveries' index by message id for
    each message took two fifths of the messages' purge, though by the time most messages are due
    it finds nothing. A step's processed key is looked for only through its delivery: a key is
    written only for a delivery, and purged with it (`_take_dispatches`). The dead letters are a
    NOT EXISTS, a probe of their index per message."""
    m, o = message_rows.c, outbox.c
    step_undone = and_(
        o.destination.like("step:%"),
        ~exists().where(
            processed.c.step == func.substr(o.destination, 6),
            processed.c.key == o.message_id,
            processed.c.processed_at < cutoff,
        ),
    )
    stored = and_(o.tenant == tenant, o.stored_at <= batch.last[0])
    if batch.since is not None:
        stored = and_(stored, o.stored_at >= batch.since)
    pending = select(o.message_id).where(stored, or_(o.sent_at.is_(None), o.sent_at >= cutoff, step_undone))
    letters = exists().where(
        dead_letters.c.message_id == m.id,
        or_(dead_letters.c.status == "open", dead_letters.c.replayed_at >= cutoff),
    )
    return and_(m.id.not_in(pending), ~letters, *(m.id.not_in(flow_needs(tenant)) for flow_needs in _keeps))


def _custom_plans(conn: Connection) -> None:
    """On PostgreSQL, a plan for each batch's own bounds rather than the generic plan psycopg's
    prepared statements get after five runs. A guard, not a measured cure: the scans seen while
    measuring came from the shape of the checks (see `_over`), and setting this alone did not
    change them."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")


def _due_messages(conn: Connection, tenant: str, cutoff: dt.datetime) -> int:
    """How many of the tenant's messages a purge would take now (holds aside), counted batch by batch."""
    due, after = 0, None
    _custom_plans(conn)
    while batch := _next_batch(conn, tenant, cutoff, after):
        after = batch.last
        found = select(func.count()).select_from(message_rows).where(batch.rows, _over(tenant, cutoff, batch))
        due += int(conn.scalar(found) or 0)
    return due


def _cutoffs(policy: Policy, now: dt.datetime) -> dict[str, dt.datetime]:
    return {kind: now - dt.timedelta(days=getattr(policy, field)) for kind, field in DAYS.items()}


def plan(store: Store, tenant: Tenant, now: dt.datetime | None = None) -> dict[str, int]:
    """What a purge of the tenant would take now, per kind (before holds, which it counts apart)."""
    cutoff = _cutoffs(policy_of(tenant), now or utcnow())
    code = tenant.code
    with store.begin() as conn:
        count = _count(conn)
        found = {
            "messages": _due_messages(conn, code, cutoff["messages"]),
            "dispatches": _due_dispatches(conn, code, cutoff["dispatches"]),
            "dead_letters": count(_letters(code, cutoff["dead_letters"])),
            "transfers": count(select(transfers.c.id).where(_transfers(code, cutoff["transfers"])).subquery()),
            "audit": count(select(audit_log.c.id).where(_audit(code, cutoff["audit"])).subquery()),
        }
    for kind, flow_purge in _flow_purges.items():  # each in its own transaction
        found[kind] = flow_purge(store, code, policy_of(tenant), now or utcnow(), True)
    return found


def _count(conn: Connection) -> Callable[[Any], int]:
    return lambda source: int(conn.scalar(select(func.count()).select_from(source)) or 0)


class _Deliveries(NamedTuple):
    """A batch of deliveries to steps: a condition on their rows, the keyset (sent_at, id) of the
    last of them, and when the first of them was sent."""

    rows: Any
    last: tuple[dt.datetime, int]
    first: dt.datetime


def _dispatch_batch(
    conn: Connection, tenant: str, cutoff: dt.datetime, after: tuple[dt.datetime, int] | None
) -> _Deliveries | None:
    """The next `BATCH` of the tenant's deliveries to steps sent before `cutoff`, in the order they
    were sent, after the keyset `after` (sent_at, id); None when there are no more. Found by the
    partial index `outbox_sent` (the feed's deliveries, which go with their message, are not in it)."""
    o = outbox.c
    sent = and_(o.tenant == tenant, STEP_DELIVERY, o.sent_at < cutoff)
    if after is not None:  # the plain bound too, which PostgreSQL estimates (a row comparison it does not)
        sent = and_(sent, tuple_(o.sent_at, o.id) > tuple_(*after), o.sent_at >= after[0])
    taken = select(o.sent_at, o.id).where(sent).order_by(o.sent_at, o.id).limit(BATCH).subquery()
    last = conn.execute(select(taken).order_by(taken.c.sent_at.desc(), taken.c.id.desc()).limit(1)).first()
    if last is None:
        return None
    first = after[0] if after is not None else conn.scalar(select(func.min(taken.c.sent_at)))
    # a range of the index, read in its order; by its ids, each was a lookup of the outbox's key
    upto = and_(tuple_(o.sent_at, o.id) <= tuple_(last.sent_at, last.id), o.sent_at <= last.sent_at)
    return _Deliveries(and_(sent, upto), (last.sent_at, last.id), first)


def _done(cutoff: dt.datetime) -> Any:
    """Whether a delivery's step was done with its message before `cutoff`: a probe of the processed
    keys per delivery (OFFSET 0 keeps it one; pulled up into a join, it was planned as a scan of
    them all for each batch)."""
    p = processed.c
    return (
        select(p.key)
        .where(
            p.step == func.substr(outbox.c.destination, 6),
            p.key == outbox.c.message_id,
            p.outcome == "done",
            p.processed_at < cutoff,
        )
        .offset(0)
        .exists()
    )


def _by_step(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Processed keys grouped by step: looked up and deleted a step at a time, by its primary key."""
    grouped: dict[str, list[str]] = {}
    for step, key in keys:
        grouped.setdefault(step, []).append(key)
    return grouped


def _letters(tenant: str, cutoff: dt.datetime) -> Any:
    return (
        select(dead_letters.c.id)
        .where(
            dead_letters.c.tenant == tenant,
            dead_letters.c.status != "open",
            dead_letters.c.replayed_at < cutoff,
            dead_letters.c.purged_at.is_(None),
        )
        .subquery()
    )


def _transfers(tenant: str, cutoff: dt.datetime) -> Any:
    return and_(transfers.c.tenant == tenant, transfers.c.at < cutoff)


def _audit(tenant: str, cutoff: dt.datetime) -> Any:
    return and_(audit_log.c.tenant == tenant, audit_log.c.at < cutoff)


# --- the purge -----------------------------------------------------------------------------------


def purge(store: Store, tenant: Tenant, *, by: str, now: dt.datetime | None = None) -> dict[str, int]:
    """Take from the store what the tenant's policy says is past its time, in batches; returns
    and records the counts per kind, and how many records a hold kept."""
    now = now or utcnow()
    cutoff = _cutoffs(policy_of(tenant), now)
    code = tenant.code
    with store.begin() as conn:
        purge_id = conn.execute(
            insert(purge_rows)
            .values(tenant=code, started_at=utcnow(), by=by, message_days=policy_of(tenant).message_days)
            .returning(purge_rows.c.id)
        ).scalar_one()
        held = _Held(holds_in_force(conn, code))
    counts: Counter[str] = Counter({kind: 0 for kind in counted()})
    with _timed(code, "messages", counts):
        counts.update(_purge_messages(store, code, cutoff["messages"], held, now))
    with _timed(code, "dispatches", counts):
        counts["dispatches"] = _purge_dispatches(store, code, cutoff["dispatches"])
    with _timed(code, "dead_letters", counts):
        counts.update(_purge_letters(store, code, cutoff["dead_letters"], held, now))
    with _timed(code, "transfers", counts):
        where = _transfers(code, cutoff["transfers"])
        counts["transfers"] = _delete_in_batches(store, transfers, where, transfers.c.id)
    with _timed(code, "audit", counts):
        counts.update(_purge_audit(store, code, cutoff["audit"], held))
    with _timed(code, "tombstones", counts):
        counts["tombstones"] = _purge_tombstones(store, code, cutoff["audit"], policy_of(tenant).message_days)
    for kind, flow_purge in _flow_purges.items():
        with _timed(code, kind, counts):
            counts[kind] = flow_purge(store, code, policy_of(tenant), now, False)
    with store.begin() as conn:
        conn.execute(
            update(purge_rows)
            .where(purge_rows.c.id == purge_id)
            .values(finished_at=utcnow(), counts=json.dumps(counts))
        )
    if store.engine.dialect.name == "sqlite":  # give the freed pages back to the file system
        with store.begin() as conn:
            conn.exec_driver_sql("PRAGMA incremental_vacuum")
    return dict(counts)


@contextmanager
def _timed(tenant: str, kind: str, counts: Counter[str]) -> Iterator[None]:
    """Log how many of `kind` the block purged and how long it took: where a slow purge spends its time."""
    began = time.perf_counter()
    yield
    took = time.perf_counter() - began
    log.info("retention purge of %s: %s %d in %.1f s", tenant, kind, counts[kind], took)


def _purge_messages(store: Store, tenant: str, cutoff: dt.datetime, held: _Held, now: dt.datetime) -> Counter[str]:
    """The due messages, a batch at a time (`_take_messages`); those naming a held person or case
    stay."""
    counts: Counter[str] = Counter()
    after: tuple[dt.datetime, str] | None = None
    m = message_rows.c
    while True:
        with paced(store) as conn:
            _custom_plans(conn)
            batch = _next_batch(conn, tenant, cutoff, after)
            if batch is None:
                return counts
            after = batch.last
            due = and_(batch.rows, _over(tenant, cutoff, batch))
            if held:  # the texts are read only to look for what is held
                kept = [key for key, text in conn.execute(select(m.id, m.envelope).where(due)) if held.names(text)]
                counts["held"] += len(kept)
                due = and_(due, m.id.not_in(kept))
            counts["messages"] += _take_messages(conn, due, cutoff - LATE, now)


def _take_messages(conn: Connection, due: Any, late: dt.datetime, now: dt.datetime) -> int:
    """Delete the `due` messages, and the feed's entries of those the hub produced (`OUT`: only they
    are sent to an exchange, so received ones cost no look into the outbox); how many. Their rows
    in the ledger stay as their tombstones, written with them; only those stored before `late`
    are told when they were purged (`LATE`). On PostgreSQL one statement, the DELETE's RETURNING
    feeding the others in its WITH; SQLite, which has no DELETE in a WITH, takes more."""
    m = message_rows.c
    feed = outbox.c.destination.like("exchange:%")
    if conn.dialect.name == "postgresql":
        gone = delete(message_rows).where(due).returning(m.id, m.stored_at, m.direction).cte("gone")
        produced = select(gone.c.id).where(gone.c.direction == OUT)
        entries = delete(outbox).where(feed, outbox.c.message_id.in_(produced)).cte("entries")
        purged_late = select(gone.c.id).where(gone.c.stored_at < late)
        timed = update(ledger).where(ledger.c.id.in_(purged_late)).values(purged_at=now).cte("timed")
        return int(conn.scalar(select(func.count()).select_from(gone).add_cte(entries, timed)) or 0)
    rows = conn.execute(delete(message_rows).where(due).returning(m.id, m.stored_at, m.direction)).all()
    if produced_ids := [row.id for row in rows if row.direction == OUT]:
        conn.execute(delete(outbox).where(feed, among(conn, outbox.c.message_id, produced_ids)))
    if late_ids := [row.id for row in rows if row.stored_at < late]:
        conn.execute(update(ledger).where(among(conn, ledger.c.id, late_ids)).values(purged_at=now))
    return len(rows)


def _purge_tombstones(store: Store, tenant: str, cutoff: dt.datetime, message_days: int) -> int:
    """The ledger's rows of messages purged before `cutoff` (the audit log's time: what it names
    still resolves), oldest first by the index of their storing. A row not told when its message
    was purged (`LATE`) was purged by `LATE` after its storing and the messages' time of the purge
    that took it: taken as the longest of `message_days` and of the times the purges used since
    the oldest row was stored, so that a policy shortened since does not shorten a tombstone's
    life. Never the row of a message still kept: the few kept that long (held, or needed by a
    flow) are found once a batch by the index of their storing, a short range, rather than
    looked for row by row."""
    entry, m, p = ledger.c, message_rows.c, purge_rows.c
    with store.begin() as conn:
        oldest = conn.scalar(select(func.min(entry.stored_at)).where(entry.tenant == tenant))
        if oldest is None:
            return 0
        used = conn.scalar(select(func.max(p.message_days)).where(p.tenant == tenant, p.started_at >= oldest))
    stored_before = cutoff - dt.timedelta(days=max(message_days, used or 0)) - LATE
    purged = or_(entry.purged_at < cutoff, entry.purged_at.is_(None))
    kept = select(m.id).where(m.tenant == tenant, m.stored_at < stored_before)
    where = and_(entry.tenant == tenant, entry.stored_at < stored_before, purged, entry.id.not_in(kept))
    return _delete_in_batches(store, ledger, where, entry.stored_at)


def _due_dispatches(conn: Connection, tenant: str, cutoff: dt.datetime) -> int:
    due, after = 0, None
    while batch := _dispatch_batch(conn, tenant, cutoff, after):
        after = batch.last
        due += int(conn.scalar(select(func.count()).select_from(outbox).where(batch.rows, _done(cutoff))) or 0)
    return due


def _purge_dispatches(store: Store, tenant: str, cutoff: dt.datetime) -> int:
    """The done deliveries to steps and their processed keys, a batch at a time (`_take_dispatches`)."""
    taken, after = 0, None
    while True:
        with paced(store) as conn:
            batch = _dispatch_batch(conn, tenant, cutoff, after)
            if batch is None:
                return taken
            after = batch.last
            taken += _take_dispatches(conn, batch, cutoff)


def _take_dispatches(conn: Connection, batch: _Deliveries, cutoff: dt.datetime) -> int:
    """Delete the deliveries of `batch` whose step was done with them before `cutoff`, and their
    processed keys; how many deliveries. A key has one delivery (`core.messages.rerun` replaces
    the earlier ones), so none is left waiting on a key that is gone.

    On PostgreSQL one statement, which deletes both by their rows' addresses. Each delivery's key
    is looked for first among the keys claimed within `NEAR` of the batch's sending, found by the
    index of their time (`processed_by_time`): one range, joined to the batch by a hash. Only a
    delivery whose key is not there (a step slow with it) is looked up by a probe of the keys' own
    index, which for every delivery was the most of a batch's time (the step compared as the
    destination's text: as the primary key's first column, the probe took half as long again).
    The join is a hash whatever the estimates (no nested loop: the deletes read their rows'
    addresses as an array, with no join): planned by estimates, with a store's statistics fresh
    or missing, it was at times each delivery looked for in both of the keys' indexes at once,
    up to fifteen times as long."""
    if conn.dialect.name == "postgresql":
        p, o = processed.c, outbox.c
        near = processed.alias("near")
        paired = and_(
            near.c.key == o.message_id,
            o.destination == "step:" + near.c.step,
            near.c.outcome == "done",
            near.c.processed_at >= batch.first - NEAR,
            near.c.processed_at < min(batch.last[0] + NEAR, cutoff),
        )
        probed = (
            select(_address(processed, conn))
            .where(
                p.key == o.message_id, o.destination == "step:" + p.step, p.outcome == "done", p.processed_at < cutoff
            )
            .scalar_subquery()
        )
        found = (  # COALESCE evaluates the probe only for a delivery the range did not pair
            select(_address(outbox, conn).label("delivery"), func.coalesce(_address(near, conn), probed).label("key"))
            .select_from(outbox.outerjoin(near, paired))
            .where(batch.rows)
            .cte("found")
        )
        conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
        keys = delete(processed).where(_address(processed, conn) == _any(select(found.c.key))).cte("keys")
        paired_deliveries = select(found.c.delivery).where(found.c.key.is_not(None))
        taken = delete(outbox).where(_address(outbox, conn) == _any(paired_deliveries)).returning(o.id).cte("gone")
        return int(conn.scalar(select(func.count()).select_from(taken).add_cte(keys)) or 0)
    gone = delete(outbox).where(batch.rows, _done(cutoff)).returning(outbox.c.destination, outbox.c.message_id)
    rows = conn.execute(gone).all()
    for step, of_step in _by_step((row.destination.removeprefix("step:"), row.message_id) for row in rows).items():
        conn.execute(delete(processed).where(processed.c.step == step, among(conn, processed.c.key, of_step)))
    return len(rows)


def _any(addresses: Select[Any]) -> Any:
    """`= ANY(ARRAY(addresses))`: rows by their addresses, read as one array before the scan (a TID
    scan, no join)."""
    return func.any(func.array(addresses.scalar_subquery()))


def _purge_letters(store: Store, tenant: str, cutoff: dt.datetime, held: _Held, now: dt.datetime) -> Counter[str]:
    counts: Counter[str] = Counter()
    seen = 0
    while True:
        with paced(store) as conn:
            rows = conn.execute(
                select(dead_letters.c.id, dead_letters.c.raw, dead_letters.c.reason)
                .where(dead_letters.c.id.in_(select(_letters(tenant, cutoff))), dead_letters.c.id > seen)
                .order_by(dead_letters.c.id)
                .limit(BATCH)
            ).all()
            if not rows:
                return counts
            seen = rows[-1].id
            taken = [row.id for row in rows if not (held and held.names(_letter_text(row.reason, row.raw)))]
            counts["held"] += len(rows) - len(taken)
            if taken:
                conn.execute(
                    update(dead_letters).where(among(conn, dead_letters.c.id, taken)).values(raw=None, purged_at=now)
                )
            counts["dead_letters"] += len(taken)


def _letter_text(reason: str, raw: bytes | None) -> str:
    return f"{reason}\n{(raw or b'').decode('utf-8', errors='replace')}"


def _purge_audit(store: Store, tenant: str, cutoff: dt.datetime, held: _Held) -> Counter[str]:
    """Audit entries past their time, but those about a held person."""
    counts: Counter[str] = Counter()
    due = _audit(tenant, cutoff)
    if held.persons:
        about_held = select(audit_persons.c.audit_id).where(audit_persons.c.person.in_(sorted(held.persons)))
        counts["held"] = _count_of(store, select(audit_log.c.id).where(due, audit_log.c.id.in_(about_held)))
        due = and_(due, audit_log.c.id.not_in(about_held))
    while True:
        with paced(store) as conn:
            ids = list(conn.scalars(select(audit_log.c.id).where(due).order_by(audit_log.c.id).limit(BATCH)))
            if ids:
                conn.execute(delete(audit_persons).where(among(conn, audit_persons.c.audit_id, ids)))
                conn.execute(delete(audit_log).where(among(conn, audit_log.c.id, ids)))
        counts["audit"] += len(ids)
        if len(ids) < BATCH:
            return counts


def _count_of(store: Store, query: Select[Any]) -> int:
    with store.begin() as conn:
        return _count(conn)(query.subquery())


def _delete_in_batches(store: Store, table: Any, where: Any, order: Any) -> int:
    """Delete the rows `where` takes, `BATCH` at a time in the `order` of an index that `where`
    uses, each batch in one statement by the rows' addresses (PostgreSQL's ctid, SQLite's rowid),
    which are read straight: by their keys, each row was one more lookup of the primary key, and a
    month of tombstones (random ids) among three years of them took six times as long."""
    taken = 0
    while True:
        with paced(store) as conn:
            address = _address(table, conn)
            batch = select(address).select_from(table).where(where).order_by(order).limit(BATCH)
            found = conn.execute(delete(table).where(address.in_(batch.scalar_subquery())))
        taken += found.rowcount
        if found.rowcount < BATCH:
            return taken


def last_purges(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    """The latest purges, newest first, with their counts per kind."""
    with store.begin() as conn:
        rows = conn.execute(select(purge_rows).order_by(purge_rows.c.id.desc()).limit(limit)).all()
    return [dict(row._mapping) | {"counts": json.loads(row.counts) if row.counts else None} for row in rows]


@scheduled("retention.purge", cron="30 3 * * *")
def nightly(ctx: JobContext, tenant: Tenant) -> int:
    """Purge what the tenant's policy says is past its time; the firing's count is all it took."""
    counts = purge(ctx.store, tenant, by="scheduler")
    return sum(count for kind, count in counts.items() if kind != "held")
