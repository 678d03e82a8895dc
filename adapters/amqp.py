"""The case system's events over AMQP: a consumer that acknowledges only after the store commit.

Deliveries are taken in batches (up to `batch`, or what arrived within `linger` seconds), stored
in one transaction, then acknowledged together. Bad messages are dead-lettered with their bytes
and reason, and acknowledged, so they never block the queue and are never lost.
"""

from __future__ import annotations

import logging
import threading

import pika

from core import deadletters, messages, metrics
from core.errors import Rejected
from core.intake import envelope_from, parse_json
from core.outage import Outage
from core.publisher import amqp_parameters
from core.runtime import Hub

log = logging.getLogger(__name__)


class EventConsumer:
    """Consumes canonical envelopes from the inbound exchange into the store."""

    def __init__(self, hub: Hub, *, batch: int = 500, linger: float = 0.05) -> None:
        self.hub = hub
        self.batch = batch
        self.linger = linger
        settings = hub.settings
        self.parameters = amqp_parameters(settings.broker_url, settings.network_timeout)
        self.exchange = settings.amqp_inbound_exchange
        self.queue = settings.amqp_inbound_queue
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage = Outage("AMQP inbound", log)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="amqp-inbound", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def run(self) -> None:
        """Consume until stopped, reconnecting with backoff when RabbitMQ or the store goes away."""
        while not self._stop.is_set():
            try:
                self._consume()
            except Exception as error:  # unacknowledged deliveries come again once it works
                self._stop.wait(self._outage.failed(error))

    def _consume(self) -> None:
        connection = pika.BlockingConnection(self.parameters)
        try:
            channel = connection.channel()
            channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
            channel.queue_declare(self.queue, durable=True)
            channel.queue_bind(self.queue, self.exchange, routing_key="#")
            channel.basic_qos(prefetch_count=self.batch * 2)
            pending: list[tuple[int, bytes]] = []
            for method, _properties, body in channel.consume(self.queue, inactivity_timeout=self.linger):
                if method is not None:
                    pending.append((method.delivery_tag, body))
                elif not pending:  # connected, declared and idle: nothing is failing
                    self._outage.ok()
                if pending and (method is None or len(pending) >= self.batch):
                    self.store_batch(pending)
                    channel.basic_ack(pending[-1][0], multiple=True)
                    pending = []
                    self._outage.ok()
                if self._stop.is_set():
                    break
            channel.cancel()
        finally:
            if connection.is_open:
                connection.close()

    def store_batch(self, deliveries: list[tuple[int, bytes]]) -> None:
        """Store good envelopes and dead-letter bad ones (a conflict with a stored one among them),
        in one transaction."""
        good, bad = [], []
        for _tag, body in deliveries:
            try:
                good.append((envelope_from(parse_json(body), self.hub.config, sender="case_system"), body))
            except Rejected as error:
                bad.append((str(error), body))
        with self.hub.store.begin() as conn:
            result = messages.accept(conn, good)
            bad += [(f"id: {messages.CONFLICT}", good[i][1]) for i in result.conflicts]
            for reason, body in bad:
                deadletters.record(conn, step=deadletters.INBOUND, kind="rejected", reason=reason, raw=body)
        metrics.accepted.labels("amqp").inc(len(result.stored))
        if bad:
            metrics.refused.labels("amqp", "rejected").inc(len(bad))
            log.warning("%d inbound AMQP messages dead-lettered", len(bad))
        self.hub.relay.nudge()
