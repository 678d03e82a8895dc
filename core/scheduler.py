"""The scheduler: runs the jobs flows register, each once per slot of its period, however many
processes on however many machines run a scheduler (they agree through the store)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Callable, TypeVar

from sqlalchemy import update

from core.config import HubConfig
from core.outage import Outage
from core.store import Store, insert_ignore, utcnow
from core.store.tables import checkpoints

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    """What a job sees, as a step sees its StepContext: the store, the configuration, and a way to
    have what it put in the outbox relayed now rather than at the relay's next round."""

    store: Store
    config: HubConfig
    nudge: Callable[[], None]


@dataclass(frozen=True)
class Job:
    name: str
    every: int
    """seconds between slots; slots are counted from the epoch, so all processes agree on them"""
    run: Callable[[JobContext], object]


_jobs: dict[str, Job] = {}

Run = TypeVar("Run", bound=Callable[[JobContext], object])


def every(seconds: int, *, name: str) -> Callable[[Run], Run]:
    """Register a job that runs once every `seconds` with a JobContext as its argument."""

    def register(run: Run) -> Run:
        _jobs[name] = Job(name, seconds, run)
        return run

    return register


def jobs() -> dict[str, Job]:
    return dict(_jobs)


def claim(store: Store, job: Job, now: dt.datetime) -> bool:
    """Take this slot of `job` for this process; False when another process already has it."""
    slot = f"{int(now.timestamp()) // job.every:012d}"
    name = f"job:{job.name}"
    with store.begin() as conn:
        insert_ignore(conn, checkpoints, {"name": name, "value": "", "updated_at": now})
        won: int = conn.execute(
            update(checkpoints)
            .where(checkpoints.c.name == name, checkpoints.c.value < slot)
            .values(value=slot, updated_at=now)
        ).rowcount
    return won == 1


class Scheduler:
    """A thread that fires due jobs; a failing job is logged and tried again in its next slot."""

    def __init__(self, store: Store, context: JobContext, *, tick: float = 1.0) -> None:
        self.store = store
        self.context = context
        self.tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_due(self, now: dt.datetime | None = None) -> list[str]:
        """Fire every job whose current slot no process has taken yet; returns their names."""
        now = now or utcnow()
        fired = []
        for job in jobs().values():
            if not claim(self.store, job, now):
                continue
            fired.append(job.name)
            try:
                job.run(self.context)
            except Exception:
                log.exception("job %s failed", job.name)
        return fired

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        outage = Outage("scheduler", log)
        wait = self.tick
        while not self._stop.wait(wait):
            try:
                self.run_due()
            except Exception as error:  # the store may be down for a while; the scheduler outlives it
                wait = outage.failed(error)
                continue
            outage.ok()
            wait = self.tick
