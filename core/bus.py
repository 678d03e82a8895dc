"""The bus: dramatiq over RabbitMQ (`amqp://`) or in-process (`memory://`).

Every step becomes an actor whose only argument is an envelope id; the envelope itself stays in
the store. Messages reach the broker through the outbox relay, which calls `dispatch` with a
batch, so a whole batch is made durable by one AMQP transaction instead of one confirm each.
"""

from __future__ import annotations

import logging
from typing import cast

import dramatiq
import pika
import pika.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
from dramatiq.middleware import Middleware, Retries
from sqlalchemy import Connection, select

from core import deadletters
from core.breaker import Breakers
from core.config import HubConfig
from core.consumer import run_step
from core.errors import Transient
from core.publisher import AmqpPublisher, amqp_parameters
from core.settings import Settings
from core.steps import Step, steps
from core.store import Store, tables

log = logging.getLogger(__name__)


class Bus:
    """The broker, one actor per registered step, and batch publishing."""

    def __init__(self, settings: Settings, store: Store, config: HubConfig) -> None:
        self.settings = settings
        self.store = store
        self.config = config
        self.in_process = settings.broker_url.startswith("memory://")
        if self.in_process:
            self.broker: dramatiq.Broker = StubBroker()
            self.broker.emit_after("process_boot")
            self.publisher = None
        else:
            self.broker = RabbitmqBroker(
                parameters=[_as_dict(amqp_parameters(settings.broker_url, settings.network_timeout))],
                confirm_delivery=True,
            )
            self.publisher = AmqpPublisher(settings.broker_url, settings.network_timeout)
        # before Retries in the list, so that it runs after Retries has marked the message failed
        self.broker.add_middleware(DeadLetterOnExhaustion(store), before=Retries)
        dramatiq.set_broker(self.broker)
        self.breakers = Breakers(max_in_flight=max(1, settings.worker_threads // 2))  # set again by worker()
        self.steps = steps()
        self.actors: dict[str, dramatiq.Actor[[list[str]], None]] = {
            name: self._actor(s) for name, s in self.steps.items()
        }
        self._declared: set[str] = set()

    def _actor(self, step: Step) -> dramatiq.Actor[[list[str]], None]:
        def run(envelope_ids: list[str]) -> None:
            try:
                run_step(self.store, self.config, step, envelope_ids, breakers=self.breakers)
            except Transient as error:  # expected: retried with backoff, not logged as a crash
                raise dramatiq.Retry(f"{type(error).__name__}: {error}") from error

        run.__name__ = step.name  # dramatiq names and logs actors by their function
        return dramatiq.actor(
            actor_name=step.name,
            queue_name=step.queue,
            broker=self.broker,
            max_retries=self.settings.retry_max,
            min_backoff=self.settings.retry_min_backoff_ms,
            max_backoff=self.settings.retry_max_backoff_ms,
        )(run)  # the decorator form: dramatiq's overloads type options only there; the same call at run time

    def dispatch(self, items: list[tuple[str, str]]) -> None:
        """Enqueue (step name, envelope id) pairs, grouped into messages of up to the step's batch;
        durable on the broker when this returns."""
        by_step: dict[str, list[str]] = {}
        for name, envelope_id in items:
            if name not in self.actors:
                raise LookupError(f"no step named {name}")
            by_step.setdefault(name, []).append(envelope_id)
        messages = [
            self.actors[name].message(ids[start : start + self.steps[name].batch])
            for name, ids in by_step.items()
            for start in range(0, len(ids), self.steps[name].batch)
        ]
        if self.publisher is None:
            for message in messages:
                self.broker.enqueue(message)
            return
        broker = cast(RabbitmqBroker, self.broker)  # a publisher is made only beside a RabbitmqBroker
        try:
            for queue in {m.queue_name for m in messages} - self._declared:
                broker.declare_queue(queue, ensure=True)
                self._declared.add(queue)
            self.publisher.publish([("", m.queue_name, m.encode(), None) for m in messages])
        except Exception:
            # RabbitMQ may come back without its queues: have dramatiq declare them again (its own
            # consumers do the same on a 404), and us ensure them before the next publish
            broker.queues_pending.update(self._declared)
            self._declared.clear()
            raise

    def publish_events(self, exchange: str, events: list[tuple[str, bytes]]) -> None:
        """Publish (routing key, body) events on a topic exchange; a no-op with no AMQP broker."""
        if self.publisher is not None:
            self.publisher.publish([(exchange, key, body, "topic") for key, body in events])

    def reachable(self) -> bool:
        """True when the broker answers (always, in process); a worker waits for this before it starts."""
        if self.in_process:
            return True
        try:
            pika.BlockingConnection(amqp_parameters(self.settings.broker_url, self.settings.network_timeout)).close()
            return True
        except (pika.exceptions.AMQPError, OSError):
            return False

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting on each step's queue, its delayed retries included (queue name to count);
        a queue not yet declared on the broker counts 0. Raises on an outage of the broker."""
        names = sorted({step.queue for step in self.steps.values()})
        if self.in_process:
            queues = cast(StubBroker, self.broker).queues
            return {name: sum(queues[q].qsize() for q in (name, dq_name(name)) if q in queues) for name in names}
        depths = dict.fromkeys(names, 0)
        parameters = amqp_parameters(self.settings.broker_url, self.settings.network_timeout)
        connection = pika.BlockingConnection(parameters)
        try:
            channel = connection.channel()
            for name in names:
                for queue in (name, dq_name(name)):
                    try:
                        depths[name] += channel.queue_declare(queue, passive=True).method.message_count
                    except pika.exceptions.ChannelClosedByBroker:  # 404: not declared yet
                        channel = connection.channel()
        finally:
            _close_quietly(connection)
        return depths

    def worker(self, threads: int | None = None) -> dramatiq.Worker:
        """The worker of this process; a partner may hold half of its threads (core.breaker)."""
        threads = threads or self.settings.worker_threads
        self.breakers.max_in_flight = max(1, threads // 2)
        return dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=100)

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.close()
        self.broker.close()


def _as_dict(parameters: pika.URLParameters) -> dict[str, object]:
    names = (
        "host",
        "port",
        "virtual_host",
        "credentials",
        "heartbeat",
        "socket_timeout",
        "stack_timeout",
        "blocked_connection_timeout",
        "ssl_options",
    )
    return {name: getattr(parameters, name) for name in names}


def _close_quietly(connection: pika.BlockingConnection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except (pika.exceptions.AMQPError, OSError):
        pass


class DeadLetterOnExhaustion(Middleware):
    """Keeps a message in the store's dead letters once dramatiq has given up retrying it."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or not message.failed:
            return
        cause = exception.__cause__ if isinstance(exception, dramatiq.Retry) and exception.__cause__ else exception
        reason = f"retries exhausted after {message.options.get('retries', 0)} attempts: {cause!r}"
        envelope_ids = message.args[0] if message.args else []
        with self.store.begin() as conn:
            done = set(
                conn.scalars(
                    select(tables.processed.c.key).where(
                        tables.processed.c.step == message.actor_name, tables.processed.c.key.in_(envelope_ids)
                    )
                )
            )
            for envelope_id in envelope_ids:
                if envelope_id not in done:
                    deadletters.record(
                        conn,
                        step=message.actor_name,
                        kind="exhausted",
                        reason=reason,
                        message_id=envelope_id,
                        tenant=_tenant_of(conn, envelope_id),
                    )
        log.error("step %s gave up on %d envelopes", message.actor_name, len(envelope_ids) - len(done))


def _tenant_of(conn: Connection, envelope_id: str) -> str | None:
    tenant: str | None = conn.scalar(select(tables.messages.c.tenant).where(tables.messages.c.id == envelope_id))
    return tenant
