"""The hub of one process: settings, configuration, store, bus and relay, started and stopped together."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import dramatiq
from sqlalchemy import Connection

from core import deadletters, messages, metrics
from core.bus import Bus
from core.config import HubConfig, Tokens, load
from core.errors import Rejected
from core.intake import envelopes_from_json
from core.messages import Accepted
from core.outbox import Relay
from core.scheduler import JobContext, Scheduler
from core.settings import Settings
from core.store import Store
from schemas.envelope import Envelope

log = logging.getLogger(__name__)


class Hub:
    """Everything a process of the hub needs. Flows must be loaded (`flows.load()`) before it is built."""

    def __init__(self, settings: Settings | None = None, config: HubConfig | None = None) -> None:
        self.settings = settings or Settings()
        self.config = config if config is not None else load(self.settings.config)
        self.tokens = Tokens(self.config)
        self.store = Store(self.settings.database_url)
        self.bus = Bus(self.settings, self.store, self.config)
        self.relay = Relay(self.store, self.bus)
        self.jobs = JobContext(self.store, self.config, self.relay.nudge)
        """What the scheduler gives each job; the CLI runs a job at once with it."""
        self.scheduler = Scheduler(self.store, self.jobs)
        self.worker: dramatiq.Worker | None = None

    def accept(self, items: Sequence[tuple[Envelope, bytes | None]], *, channel: str) -> Accepted:
        """Store first: the envelopes are durable and dispatched when this returns."""
        with self.store.begin() as conn:
            result = messages.accept(conn, items)
        metrics.accepted.labels(channel).inc(len(result.stored))
        self.relay.nudge()
        return result

    def start(self, *, worker: bool, relay: bool = True, scheduler: bool = False, threads: int | None = None) -> None:
        if relay:
            self.relay.start()
        if scheduler:
            self.scheduler.start()
        if worker:
            self.worker = self.bus.worker(threads)
            self.worker.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self.relay.stop()
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        self.bus.close()
        self.store.dispose()

    def replay(self, letter_id: int, *, by: str) -> str:
        """Send a dead letter through again; Rejected if its input is still bad."""

        def accept_raw(conn: Connection, raw: bytes, _tenant: str | None) -> str:
            items = envelopes_from_json(raw, self.config, sender="case_system", max_batch=1)
            if messages.accept(conn, items).conflicts:
                raise Rejected(messages.CONFLICT, where="id")
            return items[0][0].id

        with self.store.begin() as conn:
            envelope_id = deadletters.replay(conn, letter_id, by=by, accept_raw=accept_raw)
        self.relay.nudge()
        return envelope_id
