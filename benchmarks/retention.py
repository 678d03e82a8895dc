"""Retention over simulated months of a large city on PostgreSQL: each month's rows are generated
straight into the store by SQL (by default 2 000 000 inbound messages of about 1.4 kB with their
deliveries to a step and processed keys, and 1 000 000 visits, and the month before approved),
then the month's purge runs as the nightly job would at the month's end, and autovacuum's work is
done at once (VACUUM). Printed per month: the database's size after the purge, the purge's
time and the WAL it wrote; at the end, the intake rate (envelopes stored by
core.messages.accept, 100 a transaction) during a purge, run in a process of its own as the
scheduler runs it, against without one just before it (both on the month's rows vacuumed and
checkpointed).
Targets: the size flat after month 13 (within 10 %), a month's purge under 60 s, the intake
during a purge at least 0.8 of the rate without. Last, the purge of a month of tombstones among
three years of them (a twentieth of the messages a month), which the months above do not reach.

The messages' ids are as random as envelope ids are (UUIDs, as `schemas.envelope.new_id` makes
them): with ids in the order they were made, each index the purge probes or fills by id was
touched in one place at a time, and a month's purge at a quarter of the scale took 10-11 s
against 18-19 s with UUIDs.

    .venv/bin/python benchmarks/retention.py [--months 16] [--scale 1.0] [--wal-compression lz4]

`--scale 0.1` runs a tenth of the rows a month, for a quicker look.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

import flows  # noqa: E402
from benchmarks.common import drop_postgres, fresh_postgres  # noqa: E402
from core import messages, retention  # noqa: E402
from core.config import HubConfig  # noqa: E402
from core.store import Store  # noqa: E402
from schemas.envelope import Envelope  # noqa: E402

flows.load()

TENANT = "0180"
CONFIG = HubConfig.model_validate({"tenants": [{"code": TENANT, "name": "Stockholms stad"}]})

MONTH = """
INSERT INTO messages (id, tenant, type, source, direction, stored_at, raw, envelope)
SELECT md5('m{m}-' || i)::uuid::text, '{tenant}', 'case.event_recorded', 'case-system', 'in',
       %(start)s + (i::bigint * %(span)s / %(count)s) * interval '1 second',
       convert_to(repeat(md5(i::text), 18), 'UTF8'),
       '{{"id":"' || md5('m{m}-' || i)::uuid::text || '","payload":"' || repeat(md5((i + 1)::text), 24) || '"}}'
FROM generate_series(1, %(count)s) AS i;
INSERT INTO message_ledger (id, tenant, type, stored_at, raw_sha256, document_sha256)
SELECT md5('m{m}-' || i)::uuid::text, '{tenant}', 'case.event_recorded',
       %(start)s + (i::bigint * %(span)s / %(count)s) * interval '1 second',
       decode(md5(i::text) || md5(i::text), 'hex'), decode(md5((i + 7)::text) || md5((i + 7)::text), 'hex')
FROM generate_series(1, %(count)s) AS i;
INSERT INTO outbox (tenant, destination, message_id, stored_at, created_at, sent_at)
SELECT tenant, 'step:echo', id, stored_at, stored_at, stored_at + interval '1 second'
FROM messages WHERE stored_at >= %(start)s AND stored_at < %(end)s;
INSERT INTO processed (step, key, outcome, processed_at)
SELECT 'echo', id, 'done', stored_at + interval '2 seconds'
FROM messages WHERE stored_at >= %(start)s AND stored_at < %(end)s;
INSERT INTO visits (tenant, vendor, visit_id, version, received_at, message_id, provider_org, customer, employee_id,
                    planned_start, planned_end, actual_start, actual_end, confirmation, services,
                    double_staffing, declined, approved)
SELECT '{tenant}', 'appen', 'v{m}-' || i, 1, s, 'm{m}-1', '5560360793', '19' || lpad((i %% 1000000)::text, 10, '0'),
       'E' || (i %% 4000), s, s + interval '30 minutes', s, s + interval '32 minutes', 'nfc', 'HT-OMS',
       false, false, true
FROM (SELECT i, %(start)s + (i::bigint * %(span)s / %(visits)s) * interval '1 second' AS s
      FROM generate_series(1, %(visits)s) AS i) AS generated;
"""
"""One month of rows; {m} the month's number, the parameters its start, length and counts."""

PURGE = """
import datetime as dt, sys
import flows
from benchmarks.retention import CONFIG
from core import retention
from core.store import Store
flows.load()
store = Store(sys.argv[1])
retention.purge(store, CONFIG.tenants[0], by="bench", now=dt.datetime.fromisoformat(sys.argv[2]))
store.dispose()
"""
"""The purge in a process of its own, as the scheduler of a hub process runs it."""

APPROVED = """
INSERT INTO reimbursement_runs (tenant, period, kind, status, lock_at, created_at, created_by, approved_at,
                                approved_by, visits, paid)
VALUES ('{tenant}', %(period)s, 'regular', 'approved', %(at)s, %(at)s, 'bench', %(at)s, 'bench', 0, 0)
"""


TOMBSTONES = """
INSERT INTO message_ledger (id, tenant, type, stored_at, raw_sha256, document_sha256)
SELECT md5('t' || i)::uuid::text, '{tenant}', 'case.event_recorded', %(first)s + (i / %(count)s) * interval '1 month',
       decode(md5(i::text) || md5(i::text), 'hex'), decode(md5(i::text) || md5(i::text), 'hex')
FROM generate_series(0, 36 * %(count)s - 1) AS i
"""
"""Three years of tombstones (the ledger's rows of messages purged in their time), `count` a month,
with ids in no order of time (as envelope ids are)."""


class KindTimes(logging.Handler):
    """The seconds of each kind in the purges the benchmark runs, from the purge's own log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        _tenant, kind, _count, took = record.args  # type: ignore[misc]
        self.seconds[kind] = took

    def take(self) -> str:
        """The kinds that took a second or more, slowest first; forgotten once told."""
        slow = sorted(((took, kind) for kind, took in self.seconds.items() if took >= 1), reverse=True)
        self.seconds = {}
        return ", ".join(f"{kind} {took:.1f} s" for took, kind in slow)


def month_start(first: dt.datetime, m: int) -> dt.datetime:
    year, month = first.year + (first.month - 1 + m) // 12, (first.month - 1 + m) % 12 + 1
    return first.replace(year=year, month=month)


def generate(store: Store, m: int, start: dt.datetime, end: dt.datetime, count: int, visits: int) -> None:
    with store.engine.begin() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor:
            params = {
                "start": start,
                "end": end,
                "span": int((end - start).total_seconds()) - 10,
                "count": count,
                "visits": visits,
            }
            for statement in MONTH.format(m=m, tenant=TENANT).split(";")[:-1]:
                cursor.execute(statement, params)
            if m > 0:  # the month before, approved on the 10th
                before = month_start(start, -1)
                cursor.execute(
                    APPROVED.format(tenant=TENANT),
                    {"period": f"{before:%Y-%m}", "at": start.replace(day=10)},
                )


def vacuum_and_size(store: Store) -> float:
    """VACUUM (what autovacuum would do between purges), then the database's size in GB."""
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE)")
        return conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar() / 1e9


def checkpoint(store: Store) -> None:
    """Write every changed page to disk now, so that what follows does not pay for what came before."""
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("CHECKPOINT")


def wal_written(store: Store) -> float:
    """The server's WAL position in GB: told apart before and after a purge, what it wrote (with
    every other database's writes meanwhile, none in this benchmark)."""
    with store.engine.connect() as conn:
        return float(conn.exec_driver_sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')").scalar()) / 1e9


def intake_rate(store: Store, seconds: float, stop: threading.Event | None = None) -> float:
    """Envelopes stored a second by core.messages.accept, 100 a transaction, for `seconds` (or until `stop`)."""
    stored, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds and not (stop and stop.is_set()):
        batch = [
            (
                Envelope(
                    id=uuid.uuid4().hex,
                    type="case.event_recorded",
                    tenant=TENANT,
                    source="case-system",
                    payload={"case_ref": "ÄO-000123", "kind": "note", "recorded_by": "HANDL1"},
                ),
                None,
            )
            for _ in range(100)
        ]
        with store.begin() as conn:
            stored += len(messages.accept(conn, batch).stored)
    return stored / (time.perf_counter() - began)


def tombstones(store: Store, count: int) -> None:
    """The purge of a month of tombstones once the audit log's three years are past, among 36
    months of them: the months above leave them younger than that."""
    first = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(TOMBSTONES.format(tenant=TENANT), {"first": first, "count": count})
    vacuum_and_size(store)
    tenant, began = CONFIG.tenants[0], time.perf_counter()
    policy = retention.policy_of(tenant)  # the first month's go: stored a purge's time and the log's before
    now = month_start(first, 1) + dt.timedelta(days=policy.message_days + policy.audit_days) + retention.LATE
    taken = retention.purge(store, tenant, by="bench", now=now)["tombstones"]
    took = time.perf_counter() - began
    print(f"tombstones: {taken:,} of 36 months' {36 * count:,} purged in {took:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--months", type=int, default=16)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--wal-compression", choices=("off", "pglz", "lz4", "zstd"))
    args = parser.parse_args()
    count, visits = int(2_000_000 * args.scale), int(1_000_000 * args.scale)
    database = fresh_postgres()
    if args.wal_compression:  # the bench database's sessions only, not the server's
        engine = sa.create_engine(database, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(
                f'ALTER DATABASE "{database.rsplit("/", 1)[1]}" SET wal_compression = {args.wal_compression}'
            )
        engine.dispose()
    tenant = CONFIG.tenants[0]
    times = KindTimes()
    logging.getLogger(retention.__name__).addHandler(times)
    logging.getLogger(retention.__name__).setLevel(logging.INFO)
    try:
        store = Store(database)
        store.migrate()
        first = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        sizes = []
        for m in range(args.months):
            start, end = month_start(first, m), month_start(first, m + 1)
            began = time.perf_counter()
            generate(store, m, start, end, count, visits)
            generated = time.perf_counter() - began
            began, wal = time.perf_counter(), wal_written(store)
            counts = retention.purge(store, tenant, by="bench", now=end)
            purged, wal = time.perf_counter() - began, wal_written(store) - wal
            sizes.append(vacuum_and_size(store))
            taken = ", ".join(f"{kind} {n:,}" for kind, n in counts.items() if n)
            print(
                f"month {m + 1:2d}: generated in {generated:.0f} s; purge {purged:.1f} s ({taken or 'nothing'}; "
                f"{wal:.2f} GB of WAL; {times.take() or 'no kind a second'}); "
                f"database {sizes[-1]:.2f} GB",
                flush=True,
            )
        if len(sizes) > 13:
            spread = max(sizes[12:]) / min(sizes[12:]) - 1
            print(f"size from month 13 on: {min(sizes[12:]):.2f} to {max(sizes[12:]):.2f} GB ({spread:.1%} apart)")
        # the intake without a purge, and during the next month's purge, from one state of the store:
        # the month's rows vacuumed and on disk, as a month of autovacuum and checkpoints leaves
        # them. Taken before the month was generated, the rate without a purge came from a store at
        # rest and the rate during one from a store still vacuuming and writing out 4 GB of new rows.
        start, end = month_start(first, args.months), month_start(first, args.months + 1)
        generate(store, args.months, start, end, count, visits)
        vacuum_and_size(store)
        checkpoint(store)
        alone = intake_rate(store, 30)
        purge = subprocess.Popen(  # as the scheduler runs it: in a process of its own
            [sys.executable, "-c", PURGE, database, end.isoformat()], cwd=Path(__file__).resolve().parent.parent
        )
        done = threading.Event()
        threading.Thread(target=lambda: (purge.wait(), done.set()), daemon=True).start()
        during = intake_rate(store, 3600, stop=done)
        if purge.returncode:
            raise RuntimeError(f"the purge failed with {purge.returncode}")
        print(
            f"intake: {alone:,.0f} envelopes/s without a purge, {during:,.0f}/s during one "
            f"({during / alone:.2f} of it)",
            flush=True,
        )
        tombstones(store, count // 20)
        store.dispose()
    finally:
        drop_postgres(database)


if __name__ == "__main__":
    main()
