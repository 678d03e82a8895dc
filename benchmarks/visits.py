"""Visits: the ingest rate through the push endpoint, and the reimbursement run over a Stockholm
month (1 000 000 visits) on PostgreSQL with its peak memory, beside PostgreSQL's own GROUP BY
over the same rows as the floor.

    .venv/bin/python benchmarks/visits.py [--push 100000] [--visits 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flows  # noqa: E402
from adapters.visit_codecs import encode_visit_batch  # noqa: E402
from benchmarks.common import drop_postgres, drop_vhost, fresh_postgres, fresh_vhost, start, wait_port  # noqa: E402
from core.store import Store  # noqa: E402
from sandbox.case_system import CaseSystem  # noqa: E402
from sandbox.demo import CONFIG, TENANT, TOKEN_ENV  # noqa: E402
from sandbox.server import free_port  # noqa: E402
from sandbox.visit_vendor import month_of_visits  # noqa: E402
from schemas.identity import generate_organisation_number, generate_personnummer  # noqa: E402
from schemas.money import Period  # noqa: E402

flows.load()  # every flow's tables, and so their migrations

MARCH = Period(2026, 3)
VENDOR_TOKEN = "bench-vendor"
VENDOR = """
[[tenants.partners]]
id = "vendor"
kind = "visit_vendor"
token_env = "CASEHUB_BENCH_VENDOR"
"""


def push_rate(database: str, broker: str, total: int, workdir: Path, processes: int) -> float:
    config = workdir / "casehub.toml"
    env = {
        "CASEHUB_CONFIG": str(config),
        "CASEHUB_DATABASE_URL": database,
        "CASEHUB_BROKER_URL": broker,
        TOKEN_ENV: "x",
        "CASEHUB_BENCH_VENDOR": VENDOR_TOKEN,
    }
    log = workdir / "push.log"
    port = free_port()
    serve = start(["serve", "--port", str(port), "--processes", str(processes)], env, log)
    rng = random.Random(1)
    customers = [
        (generate_organisation_number(rng).digits, generate_personnummer(rng).digits, ["HT-OMS", "HT-SERV"])
        for _ in range(total // 50)
    ]
    made = month_of_visits(rng, MARCH, customers, prefix="B", per_customer=50)
    bodies = [encode_visit_batch(made[i : i + 1000]) for i in range(0, len(made), 1000)]
    try:
        wait_port(port)

        def send(chunk):
            with httpx.Client(
                timeout=60, headers={"Authorization": f"Bearer {VENDOR_TOKEN}", "Content-Type": "application/json"}
            ) as client:
                for body in chunk:
                    client.post(f"http://127.0.0.1:{port}/api/v1/visits", content=body).raise_for_status()

        threads = [threading.Thread(target=send, args=(bodies[i::4],)) for i in range(4)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
    finally:
        serve.terminate()
        serve.wait(timeout=30)
    engine = sa.create_engine(database)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM visits")).scalar_one()
        conn.execute(sa.text("TRUNCATE visits, messages, dead_letters"))
        conn.commit()
    engine.dispose()
    assert stored == len(made), f"{stored} stored of {len(made)}"
    return stored / elapsed


def load_month(database: str, visits: int, customers: int = 20_000, providers: int = 10) -> None:
    """`visits` (2% of them edited once) of `customers` of 10 providers, with their orders, straight
    into PostgreSQL: by default 1 000 000 visits, 50 a customer."""
    rng = random.Random(2)
    orgs = [generate_organisation_number(rng).digits for _ in range(providers)]
    people = [generate_personnummer(rng).digits for _ in range(customers)]
    engine = sa.create_engine(database)
    case_system = CaseSystem("http://unused", "x", TENANT)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "TRUNCATE visits, orders, messages, reimbursement_findings, reimbursement_lines, "
                "reimbursement_adjustments, reimbursement_runs"
            )
        )
        conn.execute(sa.text("CREATE TEMP TABLE bench_customers (i int primary key, org text, pnr text)"))
        conn.execute(
            sa.text("INSERT INTO bench_customers VALUES (:i, :org, :pnr)"),
            [{"i": i, "org": orgs[i % providers], "pnr": pnr} for i, pnr in enumerate(people)],
        )
        orders = [
            case_system.order(orgs[i % providers], person=pnr, service_hours="10.00", order_id=f"ORD-{i:08d}")
            for i, pnr in enumerate(people)
        ]
        conn.execute(
            sa.text(
                "INSERT INTO messages (id, tenant, type, source, direction, stored_at, raw, envelope) "
                "VALUES (:id, :tenant, 'order.issued', 'case-system', 'in', now(), NULL, :envelope)"
            ),
            [{"id": o["id"], "tenant": TENANT, "envelope": json.dumps(o)} for o in orders],
        )
        conn.execute(
            sa.text(
                "INSERT INTO orders (tenant, order_id, provider, case_ref, kind, version, message_id,"
                " delivered_version, state, updated_at)"
                " VALUES (:tenant, :order_id, 'p', 'c', 'new', 1, :id, 1, 'accepted', now())"
            ),
            [{"tenant": TENANT, "order_id": o["payload"]["order_id"], "id": o["id"]} for o in orders],
        )
        conn.execute(
            sa.text(f"""
            INSERT INTO visits (tenant, vendor, visit_id, version, received_at, message_id, provider_org, customer,
                employee_id, actual_start, actual_end, confirmation, services, double_staffing, declined,
                approved)
            SELECT '{TENANT}', 'vendor', 'V' || g, 1, timestamptz '2026-03-20 12:00+01', 'bench', c.org, c.pnr,
                'E1', s.start, s.start + ((g % 4) + 1) * interval '15 minutes' + (g % 60) * interval '1 second',
                CASE WHEN g % 20 = 0 THEN 'manual' ELSE 'nfc' END,
                CASE WHEN g % 3 = 0 THEN 'HT-OMS,HT-SERV' ELSE 'HT-OMS' END,
                g % 30 = 0, g % 50 = 0, g % 33 <> 0
            FROM generate_series(0, {visits - 1}) g
            JOIN bench_customers c ON c.i = g % {customers}
            CROSS JOIN LATERAL (SELECT timestamptz '2026-03-01 00:00+01' + ((g / {customers}) % 31) * interval '1 day'
                                       + ((g % 17) + 6) * interval '1 hour' AS start) s
        """)
        )
        conn.execute(
            sa.text("""
            INSERT INTO visits
            SELECT tenant, vendor, visit_id, 2, received_at + interval '1 day', message_id, provider_org, customer,
                   employee_id, planned_start, planned_end, actual_start, actual_end + interval '5 minutes',
                   confirmation, tag_id, manual_reason, services, double_staffing, declined, approved, 'end corrected'
            FROM visits WHERE substr(visit_id, 2)::int % 50 = 7
        """)
        )  # 2% of the visits edited once
        conn.execute(sa.text("ANALYZE visits"))
    engine.dispose()


def run_in_child(database: str, config: Path, processes: int) -> tuple[float, float]:
    """The run in a process of its own: (seconds, peak resident MB of it and its children)."""
    code = f"""
import os, time, flows
from benchmarks.common import ChildPeaks, peak_rss_mb
from core.config import load
from core.store import Store
from flows.reimbursement import run
from flows.reimbursement.configuration import rules_of
from schemas.money import Period
store = Store({database!r})
rules = rules_of(load({str(config)!r}).tenant({TENANT!r}))
children = ChildPeaks()
began = time.perf_counter()
run_id = run.draft(store, {TENANT!r}, Period(2026, 3), rules, by="bench", processes={processes})
print(time.perf_counter() - began, max(peak_rss_mb(os.getpid()), children.largest()))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
        env=os.environ | {TOKEN_ENV: "x", "CASEHUB_BENCH_VENDOR": VENDOR_TOKEN},
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-2000:])
    seconds, peak = result.stdout.split()
    return float(seconds), float(peak)


def group_by_floor(database: str) -> float:
    engine = sa.create_engine(database)
    with engine.connect() as conn:
        began = time.perf_counter()
        conn.execute(
            sa.text(
                "SELECT provider_org, customer, count(*), sum(extract(epoch FROM actual_end - actual_start)) "
                "FROM visits WHERE tenant = :t GROUP BY provider_org, customer"
            ),
            {"t": TENANT},
        ).all()
        elapsed = time.perf_counter() - began
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--push", type=int, default=100_000)
    parser.add_argument("--visits", type=int, default=1_000_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="casehub-bench-visits-"))
    (workdir / "casehub.toml").write_text(CONFIG + VENDOR)
    database = fresh_postgres()
    try:
        store = Store(database)
        store.migrate()
        store.dispose()
        if args.push:
            vhost = fresh_vhost()
            try:
                for processes in (1, 2):
                    rate = push_rate(database, vhost, args.push, workdir, processes)
                    print(
                        f"visits ingested through POST /api/v1/visits and stored (PostgreSQL), {processes} serve "
                        f"process(es): {rate:,.0f}/s ({args.push:,} visits, 1 000 a request, 4 clients)",
                        flush=True,
                    )
            finally:
                drop_vhost(vhost)
        if args.visits:
            customers = args.visits // 50
            for size in (args.visits // 4, args.visits):  # the same customers: memory must not grow with visits
                began = time.perf_counter()
                load_month(database, size, customers)
                print(f"loaded {size:,} visits and their orders in {time.perf_counter() - began:.0f} s", flush=True)
                for processes in (1, 2) if size == args.visits else (1,):
                    seconds, peak = run_in_child(database, workdir / "casehub.toml", processes)
                    print(
                        f"reimbursement run over {size:,} visits on PostgreSQL, {processes} process(es): "
                        f"{seconds:.1f} s, peak memory {peak:.0f} MB (largest process)",
                        flush=True,
                    )
            print(f"floor: PostgreSQL's GROUP BY over the same rows: {group_by_floor(database):.1f} s", flush=True)
    finally:
        drop_postgres(database)


if __name__ == "__main__":
    main()
