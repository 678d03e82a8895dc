"""The payroll run on PostgreSQL for 100 000 assignments with a year of versions (a raise for half
of them, an end for a tenth, contact families paid per day of stay), the period before already paid
and a tenth of the assignments raised back into it since: seconds and peak memory of the draft, for
a quarter as many assignments too (memory must not grow with them); the PAXml file written and
checked against the XSD; and, as the floor, lxml writing as many `lonetrans` elements by itself.

    .venv/bin/python benchmarks/payroll.py [--assignments 100000]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402
from lxml import etree  # noqa: E402

import flows  # noqa: E402
from benchmarks.common import drop_postgres, fresh_postgres  # noqa: E402
from core.store import Store  # noqa: E402
from schemas.identity import generate_personnummer  # noqa: E402

flows.load()

TENANT = "0125"
RECIPIENTS = 1000


def load(database: str, assignments: int) -> None:
    """The versions of `assignments` assignments and their stays, stored 40 days ago, in SQL."""
    rng = random.Random(12)
    people = ",".join(f"'{generate_personnummer(rng).digits}'" for _ in range(RECIPIENTS))
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE payroll_lines, payroll_runs, payroll_stays, payroll_assignments"))
        conn.execute(
            sa.text(f"""
            INSERT INTO payroll_assignments
            SELECT :t, 'U-' || g, v, kind, 'F' || (g % 50000), (ARRAY[{people}])[g % {RECIPIENTS} + 1],
                   'Testa Testsson', 'IFO-' || (g % 20),
                   CASE WHEN v = 1 THEN date '2025-03-01' + (g % 40) ELSE date '2025-09-01' END,
                   CASE WHEN g % 10 = 3 THEN date '2026-03-15' END,
                   CASE WHEN kind = 'contact_family' THEN 35000 ELSE 980000 + 60000 * (v - 1) END,
                   CASE WHEN kind = 'contact_family' THEN 'day' ELSE 'month' END,
                   CASE WHEN kind = 'contact_family' THEN 25000 ELSE 542000 END,
                   CASE WHEN kind = 'contact_family' THEN 'day' ELSE 'month' END,
                   'm-' || g || '-' || v, now() - interval '40 days'
            FROM generate_series(1, :n) g
            CROSS JOIN LATERAL (SELECT (ARRAY['foster_family', 'contact_family', 'contact_person'])[g % 3 + 1]) k(kind)
            CROSS JOIN LATERAL generate_series(1, CASE WHEN g % 2 = 0 THEN 2 ELSE 1 END) v
        """),
            {"t": TENANT, "n": assignments},
        )
        conn.execute(
            sa.text("""
            INSERT INTO payroll_stays
            SELECT :t, 'U-' || g, p, 1, '3,4,5,17,18,19', 's-' || g || p, now() - interval '40 days'
            FROM generate_series(1, :n) g CROSS JOIN unnest(ARRAY['2026-02', '2026-03']) p
            WHERE g % 3 = 1
        """),
            {"t": TENANT, "n": assignments},
        )
        conn.execute(sa.text("ANALYZE payroll_assignments; ANALYZE payroll_stays"))
    engine.dispose()


def raise_back(database: str) -> None:
    """A tenth of the assignments raised from February on, stored now: February's corrections."""
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.execute(
            sa.text("""
            INSERT INTO payroll_assignments
            SELECT tenant, assignment_id, version + 1, kind, employee_id, recipient, recipient_name, cost_centre,
                   date '2026-02-01', valid_to, arvode + 20000, arvode_per, omkostnad, omkostnad_per,
                   message_id || '-r', now()
            FROM payroll_assignments a
            WHERE substr(assignment_id, 3)::int % 10 = 1
              AND version = (SELECT max(version) FROM payroll_assignments b
                             WHERE b.tenant = a.tenant AND b.assignment_id = a.assignment_id)
        """)
        )
    engine.dispose()


CHILD = """
import os, sys, time, tempfile, flows
from pathlib import Path
from benchmarks.common import peak_rss_mb
from core.store import Store
from flows.payroll import run
from flows.payroll.configuration import PayrollSettings
from schemas.money import Period
flows.load()
store = Store(sys.argv[1])
began = time.perf_counter()
run_id = run.draft(store, "0125", Period.parse(sys.argv[2]), PayrollSettings(), by="bench")
seconds = time.perf_counter() - began
if sys.argv[3] == "approve":
    run.approve(store, run_id, by="bench")
with store.begin() as conn:
    count = conn.exec_driver_sql(f"SELECT count(*), count(*) FILTER (WHERE for_period <> '{sys.argv[2]}') "
                                 f"FROM payroll_lines WHERE run_id = {run_id}").one()
print(run_id, seconds, peak_rss_mb(os.getpid()), count[0], count[1])
"""


def draft_in_child(database: str, period: str, approve: bool) -> tuple[int, float, float, int, int]:
    """A draft in a process of its own: (run, seconds, peak resident MB, lines, correction lines)."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, database, period, "approve" if approve else "draft"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    run_id, seconds, peak, count, deltas = done.stdout.split()
    return int(run_id), float(seconds), float(peak), int(count), int(deltas)


def write_file(database: str, run_id: int) -> tuple[float, int]:
    """The run's PAXml file written from the store and checked against the XSD: (seconds, bytes)."""
    import datetime as dt

    from adapters.paxml import check_paxml, write_paxml
    from flows.payroll.delivery import pay_lines
    from schemas.payroll import PayrollHeader

    store = Store(database)
    header = PayrollHeader(date=dt.date(2026, 3, 25), organisation_number="2120000076", organisation_name="Ekerö")
    with tempfile.TemporaryFile() as target, store.begin() as conn:
        began = time.perf_counter()
        write_paxml(target, header, pay_lines(conn, run_id, "2026-03"))
        target.seek(0)
        check_paxml(target)
        size = target.tell()
        return time.perf_counter() - began, size


def lxml_floor(count: int) -> float:
    """lxml writing `count` lonetrans elements of eight children each with xmlfile: elements per second."""
    children = ("lonart", "benamning", "datumfrom", "datumtom", "antal", "apris", "belopp")
    began = time.perf_counter()
    with tempfile.TemporaryFile() as target, etree.xmlfile(target, encoding="utf-8") as xf:
        with xf.element("paxml"), xf.element("lonetransaktioner"):
            for n in range(count):
                trans = etree.Element("lonetrans", anstid=f"F{n}", persnr="196403273813")
                for tag in children:
                    etree.SubElement(trans, tag).text = "9800.00"
                etree.SubElement(etree.SubElement(trans, "resenheter"), "resenhet", dimid="1", id="IFO-1")
                xf.write(trans)
    return count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assignments", type=int, default=100_000)
    args = parser.parse_args()
    database = fresh_postgres()
    try:
        Store(database).migrate()
        for size in (args.assignments // 4, args.assignments):
            began = time.perf_counter()
            load(database, size)
            print(f"loaded {size:,} assignments with a year of versions in {time.perf_counter() - began:.0f} s")
            _, seconds, peak, count, _ = draft_in_child(database, "2026-02", approve=True)
            print(
                f"payroll run 2026-02, {size:,} assignments, nothing paid before: {seconds:.1f} s, "
                f"peak memory {peak:.0f} MB, {count:,} lines",
                flush=True,
            )
            raise_back(database)
            run_id, seconds, peak, count, deltas = draft_in_child(database, "2026-03", approve=False)
            print(
                f"payroll run 2026-03, {size:,} assignments, 2026-02 paid and a tenth raised back into it: "
                f"{seconds:.1f} s, peak memory {peak:.0f} MB, {count:,} lines of which {deltas:,} corrections",
                flush=True,
            )
        seconds, size = write_file(database, run_id)
        print(
            f"its PAXml file written from the store and checked against the XSD: {seconds:.1f} s, "
            f"{size / 1e6:.0f} MB, {count / seconds:,.0f} lines/s",
            flush=True,
        )
        print(f"floor: lxml writing {count:,} lonetrans by itself: {lxml_floor(count):,.0f}/s", flush=True)
    finally:
        drop_postgres(database)


if __name__ == "__main__":
    os.environ.setdefault("CASEHUB_LOG", "warning")
    main()
