"""What the benchmark scripts share: fresh databases and vhosts, hub processes, memory readings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
CASEHUB = Path(sys.executable).parent / "casehub"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def fresh_postgres() -> str:
    name = f"casehub_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres(url: str) -> None:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    admin.dispose()


def fresh_vhost() -> str:
    vhost = f"casehub-bench-{uuid.uuid4().hex[:8]}"
    ctl = shutil.which("rabbitmqctl")
    subprocess.run([ctl, "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        [ctl, "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True, capture_output=True
    )
    return f"amqp://guest:guest@127.0.0.1:5672/{vhost}"


def drop_vhost(url: str) -> None:
    subprocess.run([shutil.which("rabbitmqctl"), "-q", "delete_vhost", url.rsplit("/", 1)[1]], capture_output=True)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class ChildPeaks(threading.Thread):
    """The peak resident memory (VmHWM) of each child of this process, sampled while it runs.

    Not `ru_maxrss`: Linux keeps a process's high-water mark across exec, so a child's figure
    would include what its parent held when it forked.
    """

    def __init__(self, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.every = every
        self.peaks: dict[int, float] = {}
        self.start()

    def run(self) -> None:
        me = str(os.getpid())
        while True:
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    parent = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]
                    if parent == me:
                        self.peaks[int(entry)] = max(self.peaks.get(int(entry), 0.0), peak_rss_mb(int(entry)))
                except (OSError, IndexError):
                    continue  # the process ended meanwhile
            time.sleep(self.every)

    def largest(self) -> float:
        return max(self.peaks.values(), default=0.0)


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(CASEHUB), *args], env=os.environ | env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def wait_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")
