"""A worker killed with SIGKILL in the middle of 5 000 events on RabbitMQ and PostgreSQL:
after a restart every event has had its effect exactly once, and none is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.intake import envelope_from
from core.redaction import PERSONNUMMER
from core.runtime import Hub
from core.settings import Settings
from core.store.tables import dead_letters, messages, processed
from sandbox.case_system import CaseSystem
from sandbox.demo import CONFIG, TOKEN_ENV
from tests.conftest import TENANT, empty_tables, wait_for

EVENTS = 5000
CASEHUB = Path(sys.executable).parent / "casehub"


def count(hub: Hub, table, *where) -> int:
    with hub.store.begin() as conn:
        return conn.scalar(select(func.count()).select_from(table).where(*where))


def start_worker(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(CASEHUB), "worker", "--threads", "8"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


@pytest.mark.timeout(600)
def test_kill_9_of_a_worker_loses_nothing_and_duplicates_nothing(tmp_path, postgres_database, amqp_vhost):
    empty_tables(postgres_database)
    config = tmp_path / "casehub.toml"
    config.write_text(CONFIG)
    env = os.environ | {
        "CASEHUB_BROKER_URL": amqp_vhost,
        "CASEHUB_DATABASE_URL": postgres_database,
        "CASEHUB_CONFIG": str(config),
        TOKEN_ENV: "crash-test-token",
    }
    os.environ[TOKEN_ENV] = "crash-test-token"
    hub = Hub(Settings(broker_url=amqp_vhost, database_url=postgres_database, config=config))
    case_system = CaseSystem("http://unused", "crash-test-token", TENANT)

    for _ in range(0, EVENTS, 500):
        batch = [case_system.event() for _ in range(500)]
        hub.accept([(envelope_from(e, hub.config, sender="case_system"), None) for e in batch], channel="test")
    hub.relay.drain()  # all 5 000 are on RabbitMQ now, durable
    echoed = (processed.c.step == "echo",)

    log = tmp_path / "worker.log"
    first = start_worker(env, log)
    try:
        wait_for(lambda: count(hub, processed, *echoed) >= 500, timeout=120, what="the first 500 events")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        at_kill = count(hub, processed, *echoed)
        assert at_kill < EVENTS, "the worker finished before it was killed: the test proves nothing"

        second = start_worker(env, log)
        try:
            wait_for(
                lambda: count(hub, processed, *echoed) == EVENTS,
                timeout=300,
                what=f"all {EVENTS} events after the restart (log: {log})",
            )
            receipts = (messages.c.direction == "out", messages.c.type == "hub.receipt")
            wait_for(lambda: count(hub, messages, *receipts) == EVENTS, timeout=30)
            with hub.store.begin() as conn:
                causes = {
                    json.loads(e)["causation_id"] for e in conn.scalars(select(messages.c.envelope).where(*receipts))
                }
            assert len(causes) == EVENTS  # one receipt for each event, none twice
            assert count(hub, dead_letters) == 0
            assert count(hub, processed, *echoed, processed.c.outcome == "done") == EVENTS
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            first.kill()
        hub.stop()
    assert not PERSONNUMMER.search(log.read_text()), "a worker logged a personnummer"
    print(f"killed with {at_kill} of {EVENTS} processed; all {EVENTS} processed once after the restart")
