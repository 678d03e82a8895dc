"""Flows as modules: one flow's module imports nothing of the other flows, and `flows.load()`
registers every step and job."""

from __future__ import annotations

import json
import subprocess
import sys


def imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; import json; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=".")
    return {name for name in json.loads(done.stdout) if name.startswith("flows")}


def test_a_flows_tables_import_nothing_of_the_other_flows():
    assert imported_after("import flows.orders.tables") == {"flows", "flows.orders", "flows.orders.tables"}
    assert imported_after("import flows.visits.tables") == {"flows", "flows.visits", "flows.visits.tables"}


def test_load_registers_every_step_and_job():
    code = (
        "import flows; from core.steps import steps; from core.scheduler import jobs; flows.load(); "
        "import json; print(json.dumps([sorted(steps()), sorted(jobs())]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    registered_steps, registered_jobs = json.loads(done.stdout)
    assert registered_steps == [
        "echo",
        "orders.deliver",
        "orders.remind",
        "payroll.deliver",
        "payroll.store",
        "reimbursement.deliver",
    ]
    assert registered_jobs == [
        "orders.overdue",
        "orders.sftp_acknowledgements",
        "retention.purge",
        "visits.files",
        "visits.poll",
    ]
