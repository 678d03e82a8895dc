"""The migration of a generated Logica export (sandbox.legacy_export.clean_export: persons, cases,
decisions and notes in a realistic mix) on PostgreSQL + RabbitMQ: records per second for the dry
run and for the full run (judged and stored by the run's process, as `casehub migrate run`, and
published to the case system's exchange by a hub process's relay beside it), and peak memory, at
250 000 and at 1 000 000 records (memory must not grow); as the floor, PostgreSQL's COPY of as many
rows.

    .venv/bin/python benchmarks/migration.py [--records 1000000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

import flows  # noqa: E402
from benchmarks.common import drop_postgres, drop_vhost, fresh_postgres, fresh_vhost  # noqa: E402
from core.consumer import CASE_SYSTEM_EXCHANGE  # noqa: E402
from core.publisher import AmqpPublisher  # noqa: E402
from core.store import Store, insert_many  # noqa: E402
from flows.migration import run  # noqa: E402
from flows.migration.tables import verdicts  # noqa: E402
from sandbox.legacy_export import clean_export  # noqa: E402

flows.load()

CHILD = """
import os, pathlib, sys, time
import flows
from benchmarks.common import peak_rss_mb
from core.config import HubConfig
from core.runtime import Hub
from core.settings import Settings
from flows.migration import run
flows.load()
database, broker, folder, dry = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "dry"
config = HubConfig.model_validate({"tenants": [{"code": "0125", "name": "Ekerö kommun"}]})
hub = Hub(Settings(broker_url=broker, database_url=database), config)
began = time.perf_counter()
run_id = run.start(hub.store, "0125", pathlib.Path(folder), dry_run=dry, by="bench")
run.go(hub.store, run_id)
print(time.perf_counter() - began, peak_rss_mb(os.getpid()))
hub.stop()
"""
"""A migration run as `casehub migrate run` does it: judged and stored; the hub's relay publishes."""

RELAY = """
import os, sys, time
import flows
from benchmarks.common import peak_rss_mb
from core.config import HubConfig
from core.runtime import Hub
from core.settings import Settings
from core.store.tables import outbox
from flows.migration.tables import runs
from sqlalchemy import exists, select
flows.load()
database, broker = sys.argv[1], sys.argv[2]
config = HubConfig.model_validate({"tenants": [{"code": "0125", "name": "Ekerö kommun"}]})
hub = Hub(Settings(broker_url=broker, database_url=database), config)
while True:
    if not hub.relay.run_once():
        with hub.store.begin() as conn:
            if conn.scalar(select(exists().where(runs.c.status == "done"))) and not conn.scalar(
                select(exists().where(outbox.c.sent_at.is_(None)))
            ):
                break
        time.sleep(0.05)
print(peak_rss_mb(os.getpid()))
hub.stop()
"""
"""A hub process's relay, publishing the outbox to RabbitMQ until the run is done and the outbox empty."""


def migrate_in_child(database: str, broker: str, folder: Path, dry: bool) -> tuple[float, float, float]:
    """(seconds judged and stored, seconds until all is published, peak resident MB of the run's
    process) of a run in its own process, beside a hub process relaying (the full run)."""
    cwd = Path(__file__).parent.parent
    relay = None
    if not dry:
        relay = subprocess.Popen(
            [sys.executable, "-c", RELAY, database, broker], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd
        )
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, database, broker, str(folder), "dry" if dry else "full"],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    judged, peak = (float(value) for value in done.stdout.split())
    published = judged
    if relay is not None:
        _out, err = relay.communicate(timeout=3600)
        if relay.returncode:
            raise RuntimeError(err.decode()[-3000:])
        published = time.perf_counter() - began
    return judged, published, peak


def copy_floor(database: str, rows: int) -> float:
    """Seconds for PostgreSQL's COPY of `rows` rows of the verdicts' shape."""
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TEMP TABLE floor (file text, line int, key text, digest text, verdict text)")
        began = time.perf_counter()
        with conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy("COPY floor FROM STDIN") as copy:
                for n in range(rows):
                    copy.write_row(("PERS.DAT", n, f"K{n:011d}", "0" * 64, "migrated"))
        elapsed = time.perf_counter() - began
    engine.dispose()
    return elapsed


def verdicts_floor(database: str, rows: int) -> float:
    """Seconds for COPY of `rows` rows into the verdicts' own table (its keys and indexes), in a
    run's batches: what a run writes for every record, however fast it judges."""
    store = Store(database)
    store.migrate()
    run_id = run.start(store, "0125", Path("."), dry_run=True, by="bench")
    began = time.perf_counter()
    for first in range(0, rows, run.BATCH):
        batch = [
            (run_id, "BESLUT.DAT", line, f"D{line:011d}", f"{line:064d}", "migrated", None, None, f"D{line:011d}", None)
            for line in range(first, min(first + run.BATCH, rows))
        ]
        with store.begin() as conn:
            insert_many(conn, verdicts, run.VERDICT_COLUMNS, batch)
    elapsed = time.perf_counter() - began
    store.dispose()
    return elapsed


def broker_floor(broker: str, count: int, size: int = 500) -> float:
    """Seconds for the relay's publisher to publish `count` persistent messages of `size` bytes (an
    envelope of the migration's) to the case system's exchange, in the relay's batches."""
    publisher = AmqpPublisher(broker, timeout=10)
    body = b"x" * size
    began = time.perf_counter()
    for first in range(0, count, 1000):
        publisher.publish([(CASE_SYSTEM_EXCHANGE, "legacy.decision", body, "topic")] * min(1000, count - first))
    elapsed = time.perf_counter() - began
    publisher.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    for size in (args.records // 4, args.records):
        with tempfile.TemporaryDirectory(prefix="casehub-bench-migration-") as folder:
            counts = clean_export(Path(folder), size)
            total = sum(counts.values())
            for dry in (True, False):
                database, vhost = fresh_postgres(), fresh_vhost()
                try:
                    Store(database).migrate()
                    judged, published, peak = migrate_in_child(database, vhost, Path(folder), dry)
                finally:
                    drop_postgres(database)
                    drop_vhost(vhost)
                what = "dry run" if dry else "full run (stored, published)"
                seconds = judged if dry else published
                print(
                    f"migration {what} of {total:,} records: {total / seconds:,.0f} records/s "
                    f"({seconds:.1f} s; judged in {judged:.1f} s), peak memory {peak:.0f} MB",
                    flush=True,
                )
    database = fresh_postgres()
    try:
        print(
            f"floor: PostgreSQL COPY of {total:,} rows: {total / copy_floor(database, total):,.0f} rows/s", flush=True
        )
        print(
            f"floor: COPY of {total:,} rows into migration_verdicts (its indexes, the run's batches): "
            f"{total / verdicts_floor(database, total):,.0f} rows/s",
            flush=True,
        )
    finally:
        drop_postgres(database)
    vhost = fresh_vhost()
    try:
        print(
            f"floor: the relay's publisher, {total:,} persistent messages to the case system's exchange: "
            f"{total / broker_floor(vhost, total):,.0f} messages/s",
            flush=True,
        )
    finally:
        drop_vhost(vhost)


if __name__ == "__main__":
    main()
