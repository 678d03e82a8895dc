"""Orders per second delivered on each channel (SOAP, REST, SFTP) to the sandbox providers, by a hub
on RabbitMQ + PostgreSQL with an in-process worker, in one run.

    .venv/bin/python benchmarks/orders.py [--orders 300] [--threads 16]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

import flows  # noqa: E402
from benchmarks.common import drop_postgres, drop_vhost, fresh_postgres, fresh_vhost  # noqa: E402
from core.intake import envelope_from  # noqa: E402
from core.runtime import Hub  # noqa: E402
from core.settings import Settings  # noqa: E402
from flows.orders.tables import orders  # noqa: E402
from sandbox.case_system import CaseSystem  # noqa: E402
from sandbox.demo import CONFIG, TENANT, TOKEN_ENV  # noqa: E402
from sandbox.providers import SimulatedProviders  # noqa: E402

flows.load()  # every flow's steps, jobs and tables


def delivered(hub: Hub, provider: str) -> int:
    with hub.store.begin() as conn:
        return conn.scalar(
            select(func.count()).select_from(orders).where(orders.c.provider == provider, orders.c.state == "delivered")
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    os.environ[TOKEN_ENV] = "bench"
    database, vhost = fresh_postgres(), fresh_vhost()
    try:
        with SimulatedProviders(TENANT) as providers:
            config = Path(tempfile.mkdtemp()) / "casehub.toml"
            config.write_text(CONFIG + providers.partners_toml())
            hub = Hub(Settings(broker_url=vhost, database_url=database, config=config))
            hub.store.migrate()
            hub.start(worker=True, threads=args.threads)
            case_system = CaseSystem("http://unused", "bench", TENANT)
            try:
                for channel, provider in (("soap", "soap-omsorg"), ("rest", "rest-hemtjanst"), ("sftp", "sftp-vard")):
                    batch = [case_system.order(providers.orgs[channel]) for _ in range(args.orders)]
                    items = [
                        (envelope_from(o, hub.config, sender="case_system"), json.dumps(o).encode()) for o in batch
                    ]
                    began = time.perf_counter()
                    hub.accept(items, channel="bench")
                    while delivered(hub, provider) < args.orders:
                        time.sleep(0.05)
                    elapsed = time.perf_counter() - began
                    print(
                        f"orders delivered over {channel.upper()}: {args.orders / elapsed:,.0f}/s "
                        f"({args.orders} in {elapsed:.1f} s, {args.threads} worker threads)",
                        flush=True,
                    )
            finally:
                hub.stop()
    finally:
        drop_vhost(vhost)
        drop_postgres(database)


if __name__ == "__main__":
    main()
