"""`make bench`: runs every benchmark script in turn; each prints its own figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "events.py",
    "orders.py",
    "sftp.py",
    "visits.py",
    "payroll.py",
    "migration.py",
    "recovery.py",
    "console.py",
    "retention.py",
]


def main() -> int:
    failed = 0
    for script in SCRIPTS:
        if not (HERE / script).exists():
            continue
        print(f"== {script}", flush=True)
        failed |= subprocess.call([sys.executable, str(HERE / script)]) != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
