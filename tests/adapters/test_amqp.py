"""The case system's events over a real RabbitMQ: stored before the ack, bad ones kept, events out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pika
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from adapters.amqp import EventConsumer
from core import deadletters
from core.consumer import CASE_SYSTEM_EXCHANGE
from core.errors import Rejected
from core.store.tables import messages
from sandbox.case_system import CaseSystem
from sandbox.demo import CONFIG, TOKEN_ENV
from tests.conftest import TENANT, TOKEN, wait_for


@pytest.fixture
def runtime(request, tmp_path, postgres_database, amqp_vhost):
    """RabbitMQ and PostgreSQL only: there is no AMQP on the embedded default."""
    from core.settings import Settings
    from tests.conftest import empty_tables

    empty_tables(postgres_database)
    return Settings(
        broker_url=amqp_vhost,
        database_url=postgres_database,
        retry_max=2,
        retry_min_backoff_ms=50,
        retry_max_backoff_ms=100,
    )


@pytest.fixture
def consumer(make_hub):
    hub = make_hub()
    consumer = EventConsumer(hub, batch=50)
    consumer.start()
    yield hub, consumer
    consumer.stop()


def publish(hub, bodies: list[bytes]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(hub.settings.broker_url))
    channel = connection.channel()
    channel.exchange_declare(hub.settings.amqp_inbound_exchange, exchange_type="topic", durable=True)
    channel.confirm_delivery()
    for body in bodies:
        channel.basic_publish(
            hub.settings.amqp_inbound_exchange, "case.event_recorded", body, pika.BasicProperties(delivery_mode=2)
        )
    connection.close()


def queue_depth(hub, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(hub.settings.broker_url))
    depth = connection.channel().queue_declare(queue, passive=True).method.message_count
    connection.close()
    return depth


def stored_in(hub) -> int:
    with hub.store.begin() as conn:
        return conn.scalar(select(func.count()).select_from(messages).where(messages.c.direction == "in"))


def test_events_are_stored_acknowledged_and_bad_ones_dead_lettered(consumer):
    hub, _ = consumer
    case_system = CaseSystem("http://unused", TOKEN, TENANT)
    good = [case_system.event() for _ in range(120)]
    bad_person = case_system.event()
    bad_person["payload"]["person"] = "19410708-6996"
    bodies = [json.dumps(e).encode() for e in good] + [b"{not json", json.dumps(bad_person).encode()]
    wait_for(lambda: _declared(hub), what="the consumer's queue")
    publish(hub, bodies + bodies[:10])  # ten redelivered by the case system

    wait_for(lambda: stored_in(hub) == 120, what="120 stored envelopes")
    with hub.store.begin() as conn:
        letters = wait_for(lambda: deadletters.listing(conn).rows, what="dead letters")
    assert sorted(letter["reason"].split(":")[0] for letter in letters) == ["body", "payload.person"]
    with hub.store.begin() as conn:
        kept = [deadletters.show(conn, letter["id"])["raw"] for letter in letters]
    assert b"{not json" in kept  # the input is kept for replay
    wait_for(lambda: queue_depth(hub, hub.settings.amqp_inbound_queue) == 0, what="all acknowledged")


def test_receipts_are_published_on_the_outbound_exchange(consumer):
    hub, _ = consumer
    connection = pika.BlockingConnection(pika.URLParameters(hub.settings.broker_url))
    channel = connection.channel()
    channel.exchange_declare(CASE_SYSTEM_EXCHANGE, exchange_type="topic", durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, CASE_SYSTEM_EXCHANGE, routing_key="hub.#")
    wait_for(lambda: _declared(hub), what="the consumer's queue")
    event = CaseSystem("http://unused", TOKEN, TENANT).event()
    publish(hub, [json.dumps(event).encode()])

    def receipt():
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        return json.loads(body) if method else None

    published = wait_for(receipt, what="a receipt on the exchange")
    assert published["type"] == "hub.receipt" and published["payload"]["of"] == event["id"]
    connection.close()


def test_a_dead_lettered_inbound_message_is_replayed_after_the_fix(consumer, hub_config):
    hub, _ = consumer
    event = CaseSystem("http://unused", TOKEN, TENANT).event() | {"tenant": "0999"}
    wait_for(lambda: _declared(hub), what="the consumer's queue")
    publish(hub, [json.dumps(event).encode()])
    with hub.store.begin() as conn:
        letter = wait_for(lambda: deadletters.listing(conn).rows, what="a dead letter")[0]
    assert letter["reason"] == "tenant: unknown tenant 0999"

    hub.config = hub_config.model_copy(
        update={"tenants": [*hub_config.tenants, hub_config.tenants[0].model_copy(update={"code": "0999"})]}
    )
    assert hub.replay(letter["id"], by="user:tester") == event["id"]
    wait_for(lambda: stored_in(hub) == 1)


def _declared(hub) -> bool:
    try:
        queue_depth(hub, hub.settings.amqp_inbound_queue)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False


def test_a_worker_waits_for_a_broker_that_is_down(tmp_path, postgres_database):
    """`casehub worker` started while the broker cannot be reached keeps trying and does not exit."""
    config = tmp_path / "casehub.toml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "CASEHUB_BROKER_URL": "amqp://guest:guest@127.0.0.1:9/%2F",
        "CASEHUB_DATABASE_URL": postgres_database,
        "CASEHUB_CONFIG": str(config),
        TOKEN_ENV: "x",
    }
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "casehub"), "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            worker.wait(timeout=4)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=20)[0]
    assert "the broker is not reachable" in output
    assert worker.returncode == 0


def test_the_hubs_own_types_and_hostile_bodies_are_dead_lettered_and_the_intake_goes_on(consumer):
    hub, _ = consumer
    case_system = CaseSystem("http://unused", TOKEN, TENANT)
    forged = case_system.event() | {
        "type": "reimbursement.basis_approved",
        "payload": {"run_id": 1, "provider_org": "5560360793", "period": "2026-03"},
    }
    nul = case_system.event()
    nul["payload"]["case_ref"] = "C\u00001"
    hostile = [
        json.dumps(forged).encode(),
        json.dumps(nul).encode(),
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": ' + b"9" * 5000 + b"}",
    ]
    good = case_system.event()
    publish(hub, hostile + [json.dumps(good).encode()])
    wait_for(lambda: stored_in(hub) == 1, what="the good event")
    with hub.store.begin() as conn:
        letters = wait_for(lambda: len(found := deadletters.listing(conn).rows) == 4 and found, what="4 dead letters")
    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons[0].startswith("body: ") and "nested too deeply" in " ".join(reasons)
    assert "type: a case_system may not send 'reimbursement.basis_approved'" in reasons
    assert any(r.startswith("payload.case_ref: control characters") for r in reasons)
    wait_for(lambda: queue_depth(hub, hub.settings.amqp_inbound_queue) == 0, what="all acknowledged")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    bodies=st.lists(
        st.binary(max_size=200)
        | st.builds(
            lambda t: json.dumps(
                {"id": t, "type": "case.event_recorded", "tenant": TENANT, "source": t, "payload": {"case_ref": t}}
            ).encode(),
            st.text(max_size=20),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_batch_is_stored_or_dead_lettered_whole(consumer, bodies):
    hub, consumer_ = consumer
    with hub.store.begin() as conn:
        before = deadletters.listing(conn, limit=1).total + stored_in(hub)
    consumer_.store_batch(list(enumerate(bodies)))  # never raises: a bad body is a dead letter
    with hub.store.begin() as conn:
        assert deadletters.listing(conn, limit=1).total + stored_in(hub) == before + len(bodies)


def test_the_same_id_with_another_document_is_dead_lettered_not_dropped(consumer):
    hub, _ = consumer
    event = CaseSystem("http://unused", TOKEN, TENANT).event()
    changed = event | {"payload": event["payload"] | {"recorded_by": "SOMEONE"}}
    publish(hub, [json.dumps(event).encode(), json.dumps(event).encode(), json.dumps(changed).encode()])
    with hub.store.begin() as conn:
        (letter,) = wait_for(lambda: deadletters.listing(conn).rows, what="the conflict's dead letter")
        kept = deadletters.show(conn, letter["id"])["raw"]
        stored = conn.scalar(select(messages.c.raw).where(messages.c.id == event["id"]))
    assert letter["reason"].startswith("id: already received with another document")
    assert json.loads(kept) == changed and json.loads(stored) == event  # kept, and the first stands
    assert stored_in(hub) == 1
    with pytest.raises(Rejected, match="already received"):
        hub.replay(letter["id"], by="user:drift")  # still a conflict: the sender must use a new id
