"""Recovery after an outage: the time from a dependency coming back to the backlog drained, for
RabbitMQ and for PostgreSQL, beside what the target allows (5 s plus the backlog at the rate
measured without a fault).

`casehub serve` and one `casehub worker` run against a RabbitMQ node and a PostgreSQL cluster of
the benchmark's own (tests/e2e/services.py), which it stops and crashes; the machine's shared
services are not touched.

- Rate: `--events` case events posted in batches as fast as they are taken; events per second
  from the first post to the last event processed.
- RabbitMQ: the node stopped; `--backlog` events posted while it is down (store first: they are
  taken); down `--down` seconds in all; started again. Clock from the node accepting connections
  again to the last event processed.
- PostgreSQL: the worker paused (SIGSTOP) while `--backlog` events are posted, the cluster crashed,
  the worker let go on (it finds the store down), the cluster started again after `--down`
  seconds. Clock from the cluster accepting connections again.

    .venv/bin/python benchmarks/recovery.py [--events 5000] [--backlog 3000] [--down 15]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.case_system import CaseSystem  # noqa: E402
from sandbox.demo import CONFIG, TENANT, TOKEN_ENV  # noqa: E402
from tests.e2e.hub import HubProcesses, Outcome  # noqa: E402
from tests.e2e.services import PrivatePostgres, PrivateRabbitMQ  # noqa: E402

TOKEN = "bench-recovery-token"
BATCH = 250
TARGET_SLACK = 5.0


class Run:
    def __init__(self, hub: HubProcesses, outcome: Outcome) -> None:
        self.hub, self.outcome = hub, outcome
        self.case_system = CaseSystem(hub.url, TOKEN, TENANT, seed=31)
        self.posted = 0

    def post(self, count: int) -> None:
        """Post `count` events in batches; a batch that is not taken (503 while the store is down) is
        posted again, as a case system does."""
        for start in range(0, count, BATCH):
            batch = [self.case_system.event() for _ in range(min(BATCH, count - start))]
            while True:
                try:
                    if self.case_system.post(batch).status_code == 202:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            self.posted += len(batch)

    def processed(self) -> int:
        try:
            return self.outcome.echoed()
        except Exception:  # the store is down: not known now
            return -1

    def wait_drained(self, timeout: float = 600) -> float:
        """Seconds on the monotonic clock when every posted event has been processed."""
        deadline = time.monotonic() + timeout
        while self.processed() < self.posted:
            if time.monotonic() > deadline:
                raise SystemExit(f"not drained after {timeout} s: {self.processed()} of {self.posted}")
            time.sleep(0.05)
        return time.monotonic()


def report(what: str, backlog: int, back: float, drained: float, rate: float) -> None:
    took = drained - back
    allowed = TARGET_SLACK + backlog / rate
    verdict = "meets" if took <= allowed else "MISSES"
    print(
        f"{what}: {backlog:,} events waiting when it came back; drained {took:.1f} s after "
        f"(target: {TARGET_SLACK:.0f} s + {backlog:,} / {rate:,.0f} per s = {allowed:.1f} s): {verdict} the target"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--backlog", type=int, default=3000)
    parser.add_argument("--down", type=float, default=15.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="casehub-bench-recovery-") as folder:
        base = Path(folder)
        node, cluster = PrivateRabbitMQ(base), PrivatePostgres(base)
        hub = None
        try:
            node.start()
            cluster.start()
            with psycopg.connect(cluster.conninfo, autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")
            database = cluster.url.rsplit("/", 1)[0] + "/bench"
            hub = HubProcesses(
                base, database_url=database, broker_url=node.url, config=CONFIG, environ={TOKEN_ENV: TOKEN}
            )
            outcome = Outcome(database)
            hub.start("serve")
            hub.start("worker")
            run = Run(hub, outcome)

            began = time.monotonic()
            run.post(args.events)
            rate = args.events / (run.wait_drained() - began)
            print(f"rate without a fault: {rate:,.0f} events/s end to end ({args.events:,} events, serve + 1 worker)")

            node.stop()
            down = time.monotonic()
            run.post(args.backlog)
            time.sleep(max(0.0, args.down - (time.monotonic() - down)))
            node.start()
            back = time.monotonic()
            report(
                f"RabbitMQ down {time.monotonic() - down:.0f} s",
                run.posted - run.processed(),
                back,
                run.wait_drained(),
                rate,
            )

            worker = hub.processes["worker"].pid
            os.kill(worker, signal.SIGSTOP)
            run.post(args.backlog)
            before = run.processed()
            outcome.engine.dispose()
            cluster.crash()
            os.kill(worker, signal.SIGCONT)
            time.sleep(args.down)
            cluster.start()
            back = time.monotonic()
            report(f"PostgreSQL crashed, down {args.down:.0f} s", run.posted - before, back, run.wait_drained(), rate)
        finally:
            if hub is not None:
                hub.stop()
            node.close()
            cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
