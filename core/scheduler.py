"""The scheduler: runs the jobs flows register, for each tenant, on a cron expression.

Each tenant's `[tenants.schedules]` table names a job's expression (`"visits.poll" = "*/5 * * * *"`);
a job it does not name runs on the job's default. Expressions are read in Europe/Stockholm time by
cronsim, which crosses summer time as Debian's cron does: a time the clock skips (02:30 on the last
Sunday of March) fires when the clock jumps, and a time it repeats fires once.

Processes on any number of machines agree through the store: a slot is taken by one of them only.
The misfire policy: a job fires for the latest slot due that it has not taken, so the slots missed
while every scheduler was down run once, not once each. A paused job lets its slots pass; resumed,
it waits for its next slot (`run_now` runs it at once). Every firing is recorded with its start,
end, outcome and the count the job returned.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from cronsim import CronSim, CronSimError
from pydantic import AfterValidator, RootModel
from sqlalchemy import Connection, desc, insert, or_, select, update

from core import audit
from core.config import HubConfig, Tenant, section
from core.errors import Rejected
from core.outage import Outage
from core.store import Store, insert_ignore, utcnow
from core.store.tables import firings, schedules
from schemas.identity import STOCKHOLM

log = logging.getLogger(__name__)

EVERY_MINUTE = "* * * * *"
SCHEDULER = "scheduler"
"""Who fired a slot, in the record of firings (a person's `run_now` names the person)."""


def _cron(expression: str) -> str:
    try:
        CronSim(expression, dt.datetime(2026, 1, 1, tzinfo=STOCKHOLM))
    except CronSimError as error:
        raise ValueError(f"not a cron expression ({error}): {expression!r}") from None
    return expression


Cron = Annotated[str, AfterValidator(_cron)]
"""Five fields, minute hour day-of-month month day-of-week, in Stockholm time."""


class Schedules(RootModel[dict[str, Cron]]):
    """A tenant's `[tenants.schedules]`: job name to cron expression."""


schedules_of = section("tenant", "schedules", Schedules)


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
    cron: str
    """the default expression, for a tenant whose configuration names none"""
    run: Callable[[JobContext, Tenant], object]
    """does the job for one tenant; an int it returns is recorded as the firing's count"""


_jobs: dict[str, Job] = {}

Run = TypeVar("Run", bound=Callable[[JobContext, Tenant], object])


def scheduled(name: str, *, cron: str = EVERY_MINUTE) -> Callable[[Run], Run]:
    """Register a job run for each tenant as `run(context, tenant)`, on `cron` unless the tenant's
    configuration says otherwise."""
    _cron(cron)

    def register(run: Run) -> Run:
        _jobs[name] = Job(name, cron, run)
        return run

    return register


def jobs() -> dict[str, Job]:
    return dict(_jobs)


def job(name: str) -> Job:
    """The job registered as `name`; Rejected naming the known ones if there is none."""
    found = _jobs.get(name)
    if found is None:
        raise Rejected(f"no job {name!r} (jobs: {', '.join(sorted(_jobs)) or 'none'})", where="job")
    return found


def cron_of(tenant: Tenant, job: Job) -> str:
    return schedules_of(tenant).root.get(job.name, job.cron)


def unknown_jobs(config: HubConfig) -> list[str]:
    """Schedules naming a job no loaded flow registered, each with its place."""
    return [
        f"tenants[{t}].schedules.{name}: no such job ({', '.join(sorted(_jobs))})"
        for t, tenant in enumerate(config.tenants)
        for name in schedules_of(tenant).root
        if name not in _jobs
    ]


def latest_slot(cron: str, now: dt.datetime) -> dt.datetime:
    """The latest instant at or before `now` that `cron` names, in UTC."""
    # the minute after `now`, counted in UTC: wall-clock arithmetic in Stockholm time would lose
    # which of the two 02:30s of the night back to winter time it is
    after = now.astimezone(dt.timezone.utc).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    return next(CronSim(cron, after.astimezone(STOCKHOLM), reverse=True)).astimezone(dt.timezone.utc)


def next_slot(cron: str, now: dt.datetime) -> dt.datetime:
    """The first instant after `now` that `cron` names, in UTC."""
    return next(CronSim(cron, now.astimezone(STOCKHOLM))).astimezone(dt.timezone.utc)


def claim(store: Store, job: Job, tenant: str, slot: dt.datetime) -> int | None:
    """Take `slot` of `job` for `tenant` in this process, and record its firing as started: the
    firing's id, or None when the slot is taken (by this or another process, or a later slot was)
    or the job is paused for the tenant."""
    with store.begin() as conn:
        insert_ignore(conn, schedules, {"job": job.name, "tenant": tenant})
        won: int = conn.execute(
            update(schedules)
            .where(
                schedules.c.job == job.name,
                schedules.c.tenant == tenant,
                or_(schedules.c.last_slot.is_(None), schedules.c.last_slot < slot),
                schedules.c.paused_at.is_(None),
            )
            .values(last_slot=slot)
        ).rowcount
        return _started(conn, job.name, tenant, slot, SCHEDULER) if won == 1 else None


def _started(conn: Connection, name: str, tenant: str, slot: dt.datetime | None, by: str) -> int:
    return int(
        conn.execute(
            insert(firings)
            .values(job=name, tenant=tenant, slot=slot, fired_by=by, started_at=utcnow())
            .returning(firings.c.id)
        ).scalar_one()
    )


def fire(context: JobContext, job: Job, tenant: Tenant, firing: int) -> bool:
    """Run `job` for `tenant` now and record how the firing ended; True when it did not fail."""
    outcome, count, error = "ok", None, None
    try:
        done = job.run(context, tenant)
        count = done if isinstance(done, int) and not isinstance(done, bool) else None
    except Exception as failure:  # one job's failure stops neither the others nor its next slot
        log.exception("job %s of tenant %s failed", job.name, tenant.code)
        outcome, error = "failed", f"{type(failure).__name__}: {failure}"[:2000]
    with context.store.begin() as conn:
        conn.execute(
            update(firings)
            .where(firings.c.id == firing)
            .values(finished_at=utcnow(), outcome=outcome, count=count, error=error)
        )
    return outcome == "ok"


def run_now(context: JobContext, name: str, tenant: str, *, by: str) -> bool:
    """Run a job for a tenant at once, outside its schedule (paused or not); audited."""
    found, owner = job(name), _tenant(context.config, tenant)
    with context.store.begin() as conn:
        audit.record(conn, actor=by, action="schedule.run", tenant=tenant, subject=f"job:{name}")
        firing = _started(conn, name, tenant, None, by)
    return fire(context, found, owner, firing)


def pause(store: Store, config: HubConfig, name: str, tenant: str, *, by: str) -> None:
    """Let the job's slots pass for the tenant until `resume`; audited."""
    job(name)
    _tenant(config, tenant)
    with store.begin() as conn:
        insert_ignore(conn, schedules, {"job": name, "tenant": tenant})
        conn.execute(
            update(schedules)
            .where(schedules.c.job == name, schedules.c.tenant == tenant, schedules.c.paused_at.is_(None))
            .values(paused_at=utcnow(), paused_by=by)
        )
        audit.record(conn, actor=by, action="schedule.pause", tenant=tenant, subject=f"job:{name}")


def resume(store: Store, config: HubConfig, name: str, tenant: str, *, by: str, now: dt.datetime | None = None) -> None:
    """Run the job on its schedule again from its next slot (the slots passed while paused do not
    run); audited."""
    found, owner = job(name), _tenant(config, tenant)
    with store.begin() as conn:
        conn.execute(
            update(schedules)
            .where(schedules.c.job == name, schedules.c.tenant == tenant)
            .values(paused_at=None, paused_by=None, last_slot=latest_slot(cron_of(owner, found), now or utcnow()))
        )
        audit.record(conn, actor=by, action="schedule.resume", tenant=tenant, subject=f"job:{name}")


@dataclass(frozen=True)
class ScheduleState:
    """What `casehub schedules list` and the console show of one job for one tenant."""

    job: str
    tenant: str
    cron: str
    next_at: dt.datetime | None
    """None while paused"""
    paused_by: str | None
    last: Any | None
    """the latest firing's row: started_at, finished_at, outcome, count, error, fired_by"""


def listing(store: Store, config: HubConfig, now: dt.datetime | None = None) -> list[ScheduleState]:
    """Every job of every tenant: its expression, next slot, pause and latest firing."""
    now = now or utcnow()
    with store.begin() as conn:
        paused = {(row.job, row.tenant): row.paused_by for row in conn.execute(select(schedules)) if row.paused_at}
        states = []
        for tenant in config.tenants:
            for found in sorted(_jobs.values(), key=lambda j: j.name):
                cron = cron_of(tenant, found)
                held = paused.get((found.name, tenant.code))
                states.append(
                    ScheduleState(
                        job=found.name,
                        tenant=tenant.code,
                        cron=cron,
                        next_at=None if held else next_slot(cron, now),
                        paused_by=held,
                        last=_last_firing(conn, found.name, tenant.code),
                    )
                )
    return states


def _last_firing(conn: Connection, name: str, tenant: str) -> Any | None:
    return conn.execute(
        select(firings).where(firings.c.job == name, firings.c.tenant == tenant).order_by(desc(firings.c.id)).limit(1)
    ).first()


def _tenant(config: HubConfig, code: str) -> Tenant:
    found = config.tenant(code)
    if found is None:
        raise Rejected(f"no tenant {code} in the configuration", where="tenant")
    return found


class Scheduler:
    """A thread that fires due jobs; a failing job is logged and recorded, and tried again in its
    next slot."""

    def __init__(self, store: Store, context: JobContext, *, tick: float = 1.0) -> None:
        self.store = store
        self.context = context
        self.tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_due(self, now: dt.datetime | None = None) -> list[tuple[str, str]]:
        """Fire every job whose latest slot no process has taken yet, for each tenant; returns the
        (job, tenant) fired."""
        now = now or utcnow()
        fired = []
        for found in jobs().values():
            for tenant in self.context.config.tenants:
                firing = claim(self.store, found, tenant.code, latest_slot(cron_of(tenant, found), now))
                if firing is not None:
                    fired.append((found.name, tenant.code))
                    fire(self.context, found, tenant, firing)
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
