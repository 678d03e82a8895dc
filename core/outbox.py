"""The outbox relay: delivers what committed steps and inbound requests put in the outbox.

Rows go out in id order, a batch at a time: `step:NAME` rows to the bus, `exchange:NAME` rows to
the AMQP exchange and the feed. A row is marked sent only after the broker has it, so a crash
in between sends it again, which the idempotent consumers make harmless. On PostgreSQL one relay
at a time holds the batch (an advisory lock), so several processes may run relays.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Connection, Row, bindparam, func, select, text, update

from core import messages, metrics
from core.bus import Bus
from core.outage import Outage
from core.store import Store, among, insert_ignore, utcnow
from core.store.tables import checkpoints, outbox

log = logging.getLogger(__name__)

RELAY_LOCK = 0x6361_7365  # "case": the advisory lock id of the relay
FEED_POSITION = "feed.position"


class Relay:
    """Moves outbox rows to the broker; `nudge()` after a commit wakes it at once."""

    def __init__(self, store: Store, bus: Bus, *, batch: int = 1000, idle: float = 0.2) -> None:
        self.store = store
        self.bus = bus
        self.batch = batch
        self.idle = idle
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def nudge(self) -> None:
        self._wake.set()

    def run_once(self) -> int:
        """Relay one batch; returns how many rows went out."""
        started = time.perf_counter()
        with self.store.begin() as conn:
            if self.store.is_postgresql and not conn.scalar(select(func.pg_try_advisory_xact_lock(RELAY_LOCK))):
                return 0
            rows = conn.execute(
                select(outbox.c.id, outbox.c.destination, outbox.c.message_id)
                .where(outbox.c.sent_at.is_(None))
                .order_by(outbox.c.id)
                .limit(self.batch)
            ).all()
            if not rows:
                return 0
            now = utcnow()
            to_steps = [r for r in rows if r.destination.startswith("step:")]
            if to_steps:
                self.bus.dispatch([(r.destination[5:], r.message_id) for r in to_steps])
                conn.execute(
                    update(outbox).where(among(conn, outbox.c.id, [r.id for r in to_steps])).values(sent_at=now)
                )
            events = [r for r in rows if r.destination.startswith("exchange:")]
            if events:
                self._publish_events(conn, events, now)
        metrics.relayed.labels("step").inc(len(to_steps))
        metrics.relayed.labels("event").inc(len(events))
        metrics.relay_batch.observe(time.perf_counter() - started)
        return len(rows)

    def _publish_events(self, conn: Connection, rows: Sequence[Row[int, str, str]], now: dt.datetime) -> None:
        """`rows`: (id, destination, message_id) of outbox rows to exchanges, in id order; each is
        sent at `now`."""
        events = messages.load_typed(conn, [r.message_id for r in rows])
        by_exchange: dict[str, list[Row[int, str, str]]] = {}
        for r in rows:
            by_exchange.setdefault(r.destination[9:], []).append(r)
        for exchange, group in by_exchange.items():
            self.bus.publish_events(
                exchange, [(events[r.message_id][0], events[r.message_id][1].encode()) for r in group]
            )
        _number(conn, [r.id for r in rows], _next_position(conn, len(rows)), now)

    def drain(self, timeout: float = 60.0) -> None:
        """Relay until the outbox is empty (for the CLI and tests)."""
        deadline = time.monotonic() + timeout
        while self.run_once() and time.monotonic() < deadline:
            pass

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        outage = Outage("outbox relay", log)
        while not self._stop.is_set():
            try:
                moved = self.run_once()
            except Exception as error:  # the relay outlives a broker or database outage
                self._stop.wait(outage.failed(error))
                continue
            outage.ok()
            if moved < self.batch:
                self._wake.wait(self.idle)
                self._wake.clear()


def _next_position(conn: Connection, count: int) -> int:
    """Reserve `count` feed positions; the first one is returned. Runs under the relay lock."""
    insert_ignore(conn, checkpoints, {"name": FEED_POSITION, "value": "0", "updated_at": utcnow()})
    # the row is there: inserted just above if it was not
    current = int(cast(str, conn.scalar(select(checkpoints.c.value).where(checkpoints.c.name == FEED_POSITION))))
    conn.execute(
        update(checkpoints)
        .where(checkpoints.c.name == FEED_POSITION)
        .values(value=str(current + count), updated_at=utcnow())
    )
    return current + 1


def _number(conn: Connection, ids: list[int], first: int, now: dt.datetime) -> None:
    """Mark the outbox rows `ids` (in id order) sent at `now`, with the feed positions from `first`
    on, in one statement on PostgreSQL (a statement per row took longer than publishing them; a
    second statement for the time wrote each row's new version and its index entries twice)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "UPDATE outbox SET position = :first + v.n - 1, sent_at = :now"
                " FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS v(id, n) WHERE outbox.id = v.id"
            ).bindparams(bindparam("now", type_=outbox.c.sent_at.type)),
            {"first": first, "ids": ids, "now": now},
        )
        return
    conn.execute(
        update(outbox).where(outbox.c.id == bindparam("row_id")).values(position=bindparam("pos"), sent_at=now),
        [{"row_id": row_id, "pos": first + i} for i, row_id in enumerate(ids)],
    )


def feed(conn: Connection, *, tenant: str, since: int, limit: int = 500) -> list[tuple[int, str]]:
    """(position, envelope JSON) of the events sent to the case system after `since`, in order."""
    query = (
        select(outbox.c.position, outbox.c.message_id)
        .where(outbox.c.tenant == tenant, outbox.c.position > since, outbox.c.destination.like("exchange:%"))
        .order_by(outbox.c.position)
        .limit(limit)
    )
    rows = conn.execute(query).all()
    bodies = messages.load_many(conn, [r.message_id for r in rows])
    return [(r.position, bodies[r.message_id]) for r in rows if r.message_id in bodies]  # not the purged
