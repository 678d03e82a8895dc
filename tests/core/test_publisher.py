"""The publisher against the real RabbitMQ: batches arrive whole and in order, an idle connection is
replaced before it fails, and every failure is Transient and leaves the next batch a new connection."""

from __future__ import annotations

import socket
import time
import uuid

import pika
import pytest

from core.errors import Transient
from core.publisher import AmqpPublisher


@pytest.fixture
def bound(amqp_vhost):
    """(publisher, exchange, read): a topic exchange with a durable queue bound to it, and a
    function that takes every message off the queue as (routing key, body, persistent)."""
    exchange, queue = f"test.{uuid.uuid4().hex[:8]}", f"test.q.{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(pika.URLParameters(amqp_vhost))
    channel = connection.channel()
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, routing_key="#")

    def read() -> list[tuple[str, bytes, bool]]:
        taken = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((method.routing_key, body, properties.delivery_mode == 2))

    publisher = AmqpPublisher(amqp_vhost, timeout=5)
    yield publisher, exchange, read
    publisher.close()
    channel.queue_delete(queue)
    channel.exchange_delete(exchange)
    connection.close()


def test_a_batch_arrives_whole_in_order_and_persistent(bound):
    publisher, exchange, read = bound
    batch = [(exchange, f"legacy.k{n % 3}", f"body {n}".encode(), "topic") for n in range(2500)]
    publisher.publish(batch)
    assert read() == [(key, body, True) for _, key, body, _ in batch]  # durable once publish returns
    publisher.publish(batch[:10])
    assert len(read()) == 10


def test_a_connection_idle_past_its_heartbeat_is_replaced_before_the_next_batch(bound):
    """Nothing sends heartbeats between batches, so RabbitMQ closes an idle connection; the next
    batch must still go out, not fail as if the broker were down."""
    publisher, exchange, read = bound
    publisher.parameters.heartbeat = 1
    publisher.publish([(exchange, "a", b"before", "topic")])
    time.sleep(5)  # RabbitMQ gives up on the connection after two heartbeats it did not get
    publisher.publish([(exchange, "a", b"after", "topic")])
    assert [body for _, body, _ in read()] == [b"before", b"after"]


def test_a_refused_batch_is_transient_and_the_next_one_goes_out(bound, amqp_vhost):
    publisher, exchange, read = bound
    other = f"{exchange}.direct"
    connection = pika.BlockingConnection(pika.URLParameters(amqp_vhost))
    connection.channel().exchange_declare(other, exchange_type="direct")
    publisher.publish([(exchange, "a", b"first", "topic")])
    with pytest.raises(Transient, match="PRECONDITION_FAILED"):  # declared as another type: the channel is closed
        publisher.publish([(exchange, "a", b"lost", "topic"), (other, "a", b"lost too", "topic")])
    publisher.publish([(exchange, "a", b"second", "topic")])
    assert [body for _, body, _ in read()] == [b"first", b"second"]  # the refused batch's transaction is undone
    connection.channel().exchange_delete(other)
    connection.close()


def test_an_unreachable_broker_is_transient():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    publisher = AmqpPublisher(f"amqp://guest:guest@127.0.0.1:{port}/%2F", timeout=2)
    began = time.monotonic()
    with pytest.raises(Transient):
        publisher.publish([("", "q", b"x", None)])
    assert time.monotonic() - began < 10
    publisher.close()
