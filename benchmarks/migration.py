"""The migration of a generated Logica export (sandbox.legacy_export.clean_export: persons, cases,
decisions and notes in a realistic mix) on PostgreSQL + RabbitMQ: records per second for the dry
run and for the full run (judged, stored, published to the case system's exchange by the relay),
and peak memory, at 250 000 and at 1 000 000 records (memory must not grow); as the floor,
PostgreSQL's COPY of as many rows.

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
from core.store import Store  # noqa: E402
from sandbox.legacy_export import clean_export  # noqa: E402

flows.load()

CHILD = """
import os, sys, time
import flows
from benchmarks.common import peak_rss_mb
from core.config import HubConfig
from core.runtime import Hub
from core.settings import Settings
from flows.migration import run
from sqlalchemy import func, select
from core.store.tables import outbox
flows.load()
database, broker, folder, dry = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "dry"
config = HubConfig.model_validate({"tenants": [{"code": "0125", "name": "Ekerö kommun"}]})
hub = Hub(Settings(broker_url=broker, database_url=database), config)
hub.start(worker=False)
began = time.perf_counter()
run_id = run.start(hub.store, "0125", __import__("pathlib").Path(folder), dry_run=dry, by="bench")
run.go(hub.store, run_id)
judged = time.perf_counter() - began
while True:
    with hub.store.begin() as conn:
        waiting = conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None)))
    if not waiting:
        break
    hub.relay.nudge()
    time.sleep(0.2)
published = time.perf_counter() - began
hub.stop()
print(judged, published, peak_rss_mb(os.getpid()))
"""


def migrate_in_child(database: str, broker: str, folder: Path, dry: bool) -> tuple[float, float, float]:
    """(seconds judged, seconds until the outbox is empty, peak resident MB) of a run in its own process."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, database, broker, str(folder), "dry" if dry else "full"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    judged, published, peak = done.stdout.split()
    return float(judged), float(published), float(peak)


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
    finally:
        drop_postgres(database)


if __name__ == "__main__":
    main()
