"""The figures IT operations watches: messages per flow per hour, the backlog in the outbox and on
the queues, failures in the last 24 hours. The console's overview shows them and `/metrics` serves
them to Prometheus (`Collector`), both from `figures`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as PrometheusCollector
from sqlalchemy import func, select

from core.bus import Bus
from core.store import Store, utcnow
from core.store.tables import dead_letters, messages, outbox
from schemas.identity import STOCKHOLM

log = logging.getLogger(__name__)

DAY = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Figures:
    hourly: Counter[tuple[str, dt.datetime]]
    """Messages stored per (flow, Stockholm hour) in the last 24 hours; a flow is the first part
    of the document type."""
    backlog: int
    """Outbox rows not yet sent."""
    queues: dict[str, int] | None
    """Messages waiting per queue; None while the broker cannot be asked."""
    failures: dict[str, int]
    """Dead letters of the last 24 hours by kind."""
    open_letters: int


def figures(store: Store, bus: Bus, now: dt.datetime | None = None) -> Figures:
    since = (now or utcnow()) - DAY
    with store.begin() as conn:
        hourly: Counter[tuple[str, dt.datetime]] = Counter()
        recent = select(messages.c.type, messages.c.stored_at).where(messages.c.stored_at >= since)
        for kind, at in conn.execute(recent):
            hourly[(kind.split(".", 1)[0], at.astimezone(STOCKHOLM).replace(minute=0, second=0, microsecond=0))] += 1
        backlog = conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))) or 0
        failures = {
            kind: count
            for kind, count in conn.execute(
                select(dead_letters.c.kind, func.count())
                .where(dead_letters.c.failed_at >= since)
                .group_by(dead_letters.c.kind)
            )
        }
        open_letters = (
            conn.scalar(select(func.count()).select_from(dead_letters).where(dead_letters.c.status == "open")) or 0
        )
    try:
        queues: dict[str, int] | None = bus.queue_depths()
    except Exception as error:  # an outage of the broker: the figures of the store still count
        log.warning("queue depths not known: %s", type(error).__name__)
        queues = None
    return Figures(hourly, backlog, queues, failures, open_letters)


class Collector(PrometheusCollector):
    """The figures as gauges, computed at each scrape of /metrics."""

    def __init__(self, store: Store, bus: Bus) -> None:
        self.store, self.bus = store, bus

    def collect(self) -> Iterator[Metric]:
        found = figures(self.store, self.bus)
        backlog = GaugeMetricFamily("casehub_outbox_backlog", "Outbox rows not yet sent")
        backlog.add_metric([], found.backlog)
        yield backlog
        queued = GaugeMetricFamily("casehub_queue_messages", "Messages waiting on a step's queue", labels=["queue"])
        for queue, count in sorted((found.queues or {}).items()):
            queued.add_metric([queue], count)
        yield queued
        per_flow: Counter[str] = Counter()
        for (flow, _hour), count in found.hourly.items():
            per_flow[flow] += count
        stored = GaugeMetricFamily("casehub_messages_24h", "Messages stored in the last 24 hours", labels=["flow"])
        for flow, count in sorted(per_flow.items()):
            stored.add_metric([flow], count)
        yield stored
        failed = GaugeMetricFamily("casehub_dead_letters_24h", "Dead letters of the last 24 hours", labels=["kind"])
        for kind, count in sorted(found.failures.items()):
            failed.add_metric([kind], count)
        yield failed
        still = GaugeMetricFamily("casehub_dead_letters_open", "Dead letters not yet replayed")
        still.add_metric([], found.open_letters)
        yield still
