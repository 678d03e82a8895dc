"""Faults injected while the case system keeps posting: every process recovers by itself.

The hub runs as IT operations runs it (`casehub serve`, and `casehub worker` at scale) against a
RabbitMQ node and a PostgreSQL cluster of the suite's own, which the tests stop, crash and wipe;
the machine's shared services are never touched. Each test asserts that every event answered 2xx
is processed exactly once, that no process needed a restart (but the ones killed), and that no
personnummer reached a log.
"""
from __future__ import annotations

import itertools
import time

import httpx
import psycopg
import pytest

from sandbox.case_system import CaseSystem
from sandbox.demo import CONFIG, TENANT, TOKEN_ENV
from tests.conftest import wait_for
from tests.e2e.hub import (CaseSystemStream, HubProcesses, Outcome, assert_no_personnummer,
                           assert_processed_exactly_once, assert_said_once)

TOKEN = "e2e-case-system-token"
_numbers = itertools.count(1)


@pytest.fixture
def scale(private_postgres, private_rabbitmq):
    """(database URL, broker URL): a database and a virtual host of this test's own on the private servers."""
    name = f"e2e_{next(_numbers)}"
    with psycopg.connect(private_postgres.conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    add_vhost(private_rabbitmq, name)
    database = private_postgres.url.rsplit("/", 1)[0] + f"/{name}"
    return database, private_rabbitmq.url.replace("/%2F", f"/{name}"), name


def add_vhost(node, name: str) -> None:
    """What an operator's provisioning does on a new node: the virtual host, and guest's rights on it."""
    for args in (("add_vhost", name), ("set_permissions", "-p", name, "guest", ".*", ".*", ".*")):
        done = node.rabbitmqctl(*args)
        assert done.returncode == 0 or "already exists" in done.stderr, done.stderr


@pytest.fixture
def hub_at_scale(tmp_path, scale):
    database, broker, _ = scale
    hub = HubProcesses(tmp_path, database_url=database, broker_url=broker, config=CONFIG, environ={TOKEN_ENV: TOKEN})
    outcome = Outcome(database)
    yield hub, outcome
    hub.stop()
    outcome.close()
    assert_no_personnummer(hub.logs())


def case_events(count: int, seed: int) -> list[dict]:
    case_system = CaseSystem("http://unused", TOKEN, TENANT, seed=seed)
    return [case_system.event() for _ in range(count)]


def settle(outcome: Outcome, stream: CaseSystemStream, timeout: float = 60) -> None:
    stream.wait(timeout)
    wait_for(lambda: outcome.echoed() >= len(set(stream.answered)), timeout=timeout,
             what=f"all {len(stream.answered)} answered events processed")
    assert_processed_exactly_once(outcome, stream)


def test_kill_9_of_a_worker_and_of_serve(hub_at_scale):
    hub, outcome = hub_at_scale
    hub.start("serve")
    hub.start("worker")
    stream = CaseSystemStream(hub.url, TOKEN, case_events(600, seed=11), rate=80).start()
    wait_for(lambda: outcome.echoed() >= 150, timeout=60, what="150 events processed")
    hub.kill("worker")
    hub.start("worker")
    wait_for(lambda: len(stream.answered) >= 400, timeout=60, what="400 events answered")
    hub.kill("serve")
    hub.start("serve")
    settle(outcome, stream)
    assert len(stream.answered) == 600
    assert any(a.status == 0 for a in stream.answers), "serve was killed: some request must have gone unanswered"


def test_rabbitmq_stopped_and_started(hub_at_scale, private_rabbitmq):
    hub, outcome = hub_at_scale
    hub.start("serve")
    hub.start("worker")
    stream = CaseSystemStream(hub.url, TOKEN, case_events(500, seed=12), rate=40).start()
    wait_for(lambda: outcome.echoed() >= 100, timeout=60, what="100 events processed")
    private_rabbitmq.stop()
    down = time.monotonic()
    time.sleep(8)
    at_restart = len(stream.answered)
    private_rabbitmq.start()
    up = time.monotonic()
    settle(outcome, stream)
    during = stream.posted_while(down, up)
    assert during and all(a.status == 202 for a in during if a.what == "post"), "store first: intake goes on"
    assert at_restart > 100 + 100, "the case system's events were taken while RabbitMQ was down"
    assert hub.alive() and hub.starts == {"serve": 1, "worker": 1}
    assert_said_once(hub.logs(), "outbox relay", "AMQP inbound")


def test_rabbitmq_reset_loses_its_definitions(hub_at_scale, private_rabbitmq, scale):
    hub, outcome = hub_at_scale
    hub.start("serve")
    hub.start("worker")
    stream = CaseSystemStream(hub.url, TOKEN, case_events(400, seed=13), rate=40).start()
    wait_for(lambda: outcome.echoed() >= 100, timeout=60, what="100 events processed")
    private_rabbitmq.reset()  # a new node: no exchanges, no queues, no messages
    add_vhost(private_rabbitmq, scale[2])
    settle(outcome, stream)
    assert hub.alive() and hub.starts == {"serve": 1, "worker": 1}


def test_postgresql_crashed_and_started(hub_at_scale, private_postgres):
    hub, outcome = hub_at_scale
    hub.start("serve")
    hub.start("worker")
    stream = CaseSystemStream(hub.url, TOKEN, case_events(400, seed=14), rate=40).start()
    wait_for(lambda: outcome.echoed() >= 100, timeout=60, what="100 events processed")
    outcome.engine.dispose()
    private_postgres.crash()
    down = time.monotonic()
    time.sleep(3)
    ready = httpx.get(f"{hub.url}/readyz", timeout=10)
    assert ready.status_code == 503 and ready.json()["store"] != "ok"
    time.sleep(5)
    private_postgres.start()
    up = time.monotonic()
    settle(outcome, stream)
    during = [a for a in stream.posted_while(down, up) if a.what == "post"]
    assert {a.status for a in during} <= {202, 503}, "a store outage is 503, never 500"
    assert any(a.status == 503 for a in during)
    assert httpx.get(f"{hub.url}/readyz", timeout=10).status_code == 200
    assert hub.alive() and hub.starts == {"serve": 1, "worker": 1}
    assert_said_once(hub.logs(), "outbox relay", "scheduler", "http intake")
