"""Events per second end to end (POST, stored, step done, effect committed), on memory + SQLite and
on RabbitMQ + PostgreSQL with 2 worker processes, beside the drain rate of a no-op dramatiq actor
on the same RabbitMQ (the ceiling); and the hub's memory over a long run.

    .venv/bin/python benchmarks/events.py [--events 20000] [--long 100000]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    drop_postgres,
    drop_vhost,
    fresh_postgres,
    fresh_vhost,
    peak_rss_mb,
    rss_mb,
    start,
    wait_port,
)
from sandbox.case_system import CaseSystem  # noqa: E402
from sandbox.demo import CONFIG, TOKEN_ENV  # noqa: E402
from sandbox.server import free_port  # noqa: E402

TOKEN = "bench-token"
BATCH = 500
CLIENTS = 4


def post_all(url: str, total: int, seed: int) -> None:
    """POST `total` generated events in batches from CLIENTS threads."""
    generator = CaseSystem(url, TOKEN, "0125", seed=seed)
    bodies = []
    for start_at in range(0, total, BATCH):
        batch = [generator.event() for _ in range(min(BATCH, total - start_at))]
        bodies.append(json.dumps(batch).encode())

    def send(chunk: list[bytes]) -> None:
        with httpx.Client(
            timeout=60, headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        ) as client:
            for body in chunk:
                answer = client.post(f"{url}/api/v1/events", content=body)
                answer.raise_for_status()

    threads = [threading.Thread(target=send, args=(bodies[i::CLIENTS],)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def processed(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM processed WHERE step = 'echo'")).scalar_one()


def run_hub(label: str, env: dict, workers: int, total: int, workdir: Path, memory_probe: bool = False) -> dict:
    port = free_port()
    log = workdir / f"{label}.log"
    start(["db", "upgrade"], env, log).wait()
    serve = start(["serve", "--port", str(port)], env, log)
    others = [start(["worker", "--threads", "8"], env, log) for _ in range(workers)]
    engine = sa.create_engine(env["CASEHUB_DATABASE_URL"])
    rss = []
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}"
        post_all(url, 200, seed=99)  # warm up
        while processed(engine) < 200:
            time.sleep(0.05)
        began = time.perf_counter()
        sender = threading.Thread(target=post_all, args=(url, total, 1))
        sender.start()
        done = 0
        while done < total + 200:
            time.sleep(0.25)
            done = processed(engine)
            if memory_probe:
                rss.append((done, sum(rss_mb(p.pid) for p in [serve, *others])))
        elapsed = time.perf_counter() - began
        sender.join()
        posted_at = elapsed
        peaks = [peak_rss_mb(p.pid) for p in [serve, *others]]
    finally:
        for process in [serve, *others]:
            process.send_signal(signal.SIGTERM)
        for process in [serve, *others]:
            try:
                process.wait(timeout=30)
            except Exception:
                process.kill()
        engine.dispose()
    return {
        "label": label,
        "events": total,
        "seconds": posted_at,
        "rate": total / posted_at,
        "peak_rss_mb": peaks,
        "rss": rss,
    }


def noop_drain(broker_url: str, total: int, workdir: Path) -> float:
    """Messages per second that 2 dramatiq worker processes drain of a no-op actor."""
    import subprocess

    module = workdir / "noop_actor.py"
    module.write_text(
        "import dramatiq, pika\n"
        "from dramatiq.brokers.rabbitmq import RabbitmqBroker\n"
        f"dramatiq.set_broker(RabbitmqBroker(url={broker_url!r}))\n"
        "@dramatiq.actor(queue_name='noop')\n"
        "def noop(n):\n    pass\n"
    )
    sys.path.insert(0, str(workdir))
    import noop_actor  # noqa: F401
    import pika

    noop_actor.dramatiq.get_broker().declare_queue("noop", ensure=True)
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    channel = connection.channel()
    for i in range(total):
        channel.basic_publish("", "noop", noop_actor.noop.message(i).encode(), pika.BasicProperties(delivery_mode=2))
    connection.close()
    probe = pika.BlockingConnection(pika.URLParameters(broker_url)).channel()
    workers = subprocess.Popen(
        [str(Path(sys.executable).parent / "dramatiq"), "noop_actor", "--processes", "2", "--threads", "8"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        depth = total
        while depth == total:  # the clock starts when the workers have booted and begun
            depth = probe.queue_declare("noop", passive=True).method.message_count
            time.sleep(0.01)
        began, start_depth = time.perf_counter(), depth
        while depth:
            depth = probe.queue_declare("noop", passive=True).method.message_count
            time.sleep(0.02)
        elapsed = time.perf_counter() - began
        probe.connection.close()
    finally:
        workers.send_signal(signal.SIGTERM)
        workers.wait(timeout=30)
    return start_depth / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--long", type=int, default=100_000, help="events of the memory run (0: skip)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="casehub-bench-"))
    config = workdir / "casehub.toml"
    config.write_text(CONFIG)
    base = {"CASEHUB_CONFIG": str(config), TOKEN_ENV: TOKEN}

    embedded = run_hub(
        "memory+sqlite",
        base | {"CASEHUB_BROKER_URL": "memory://", "CASEHUB_DATABASE_URL": f"sqlite:///{workdir / 'hub.db'}"},
        workers=0,
        total=args.events,
        workdir=workdir,
    )
    print(
        f"events end to end, memory + SQLite, 1 process: {embedded['rate']:,.0f}/s "
        f"({embedded['events']} in {embedded['seconds']:.1f} s)"
    )

    database, vhost = fresh_postgres(), fresh_vhost()
    try:
        scale = run_hub(
            "rabbitmq+postgresql",
            base | {"CASEHUB_BROKER_URL": vhost, "CASEHUB_DATABASE_URL": database},
            workers=2,
            total=args.events,
            workdir=workdir,
        )
        print(
            f"events end to end, RabbitMQ + PostgreSQL, serve + 2 workers: {scale['rate']:,.0f}/s "
            f"({scale['events']} in {scale['seconds']:.1f} s)"
        )
        ceiling = noop_drain(vhost, args.events, workdir)
        print(f"ceiling: no-op dramatiq actor drained by 2 worker processes: {ceiling:,.0f}/s")
        print(f"hub / ceiling: {scale['rate'] / ceiling:.2f} (target 0.50)")
    finally:
        drop_vhost(vhost)
        drop_postgres(database)

    if args.long:
        database, vhost = fresh_postgres(), fresh_vhost()
        try:
            long = run_hub(
                "long",
                base | {"CASEHUB_BROKER_URL": vhost, "CASEHUB_DATABASE_URL": database},
                workers=2,
                total=args.long,
                workdir=workdir,
                memory_probe=True,
            )
        finally:
            drop_vhost(vhost)
            drop_postgres(database)
        readings = long["rss"]
        tenth = next(mb for done, mb in readings if done >= args.long / 10)
        last = readings[-1][1]
        print(
            f"memory over {args.long} events (serve + 2 workers, RSS summed): {tenth:.0f} MB at "
            f"{args.long // 10}, {last:.0f} MB at {args.long}; rate {long['rate']:,.0f}/s"
        )


if __name__ == "__main__":
    main()
