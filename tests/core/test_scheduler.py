"""The scheduler: each job fires once per slot of its tenant's cron expression, however many
schedulers run, across summer time, once after downtime, and not while paused."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from core import scheduler
from core.config import check
from core.scheduler import Scheduler, latest_slot, listing, pause, resume, run_now, scheduled
from core.store.tables import audit, firings
from schemas.identity import STOCKHOLM
from tests.conftest import TENANT, TOKEN, TOKEN_ENV, one_tenant

UTC = dt.timezone.utc


@pytest.fixture
def hub_config(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return one_tenant(schedules={"test.job": "30 2 * * *"})


@pytest.fixture
def fired():
    """A job `test.job` (every ten minutes by default; this tenant's configuration says 02:30) that
    notes each run, and `test.failing`, which fails; both gone after the test."""
    runs: list[str] = []

    @scheduled("test.job", cron="*/10 * * * *")
    def note(_ctx, tenant) -> int:
        runs.append(tenant.code)
        return 7

    @scheduled("test.failing", cron="0 * * * *")
    def failing(_ctx, _tenant) -> None:
        raise RuntimeError("partner down")

    yield runs
    scheduler._jobs.pop("test.job")
    scheduler._jobs.pop("test.failing")


def _firings(hub, job: str = "test.job") -> list:
    with hub.store.begin() as conn:
        return conn.execute(select(firings).where(firings.c.job == job).order_by(firings.c.id)).all()


def _ticks(first: dt.datetime, last: dt.datetime, every: dt.timedelta):
    at = first
    while at <= last:
        yield at
        at += every


def test_one_firing_per_slot_among_racing_schedulers(make_hub, fired):
    hub = make_hub(worker=False)
    schedulers = [Scheduler(hub.store, hub.jobs) for _ in range(4)]
    barrier = threading.Barrier(len(schedulers))

    def race(each: Scheduler, at: dt.datetime) -> None:
        barrier.wait()
        each.run_due(at)

    slot = dt.datetime(2026, 3, 2, 2, 30, tzinfo=STOCKHOLM)
    for at in [slot, slot + dt.timedelta(seconds=59), slot + dt.timedelta(hours=3), slot + dt.timedelta(days=1)]:
        threads = [threading.Thread(target=race, args=(s, at)) for s in schedulers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert fired == [TENANT, TENANT]  # 2 March 02:30 once, 3 March 02:30 once
    assert [row.slot for row in _firings(hub)] == [slot.astimezone(UTC), (slot + dt.timedelta(days=1)).astimezone(UTC)]
    assert all(row.outcome == "ok" and row.count == 7 and row.fired_by == "scheduler" for row in _firings(hub))


def test_across_the_change_to_summer_time_a_skipped_time_fires_once_when_the_clock_jumps(make_hub, fired):
    """02:30 does not exist on 28 March 2027 in Stockholm (02:00 becomes 03:00): it fires at 03:00
    CEST, once; on the night back to winter time (31 October 2027) 02:30 comes twice and fires once."""
    hub = make_hub(worker=False)
    each = Scheduler(hub.store, hub.jobs)
    each.run_due(dt.datetime(2027, 3, 27, 21, 0, tzinfo=UTC))  # the first tick ever fires the latest slot
    assert [row.slot for row in _firings(hub)] == [dt.datetime(2027, 3, 27, 1, 30, tzinfo=UTC)]
    for at in _ticks(
        dt.datetime(2027, 3, 27, 21, 0, tzinfo=UTC), dt.datetime(2027, 3, 28, 5, 0, tzinfo=UTC), dt.timedelta(minutes=5)
    ):
        each.run_due(at)
    assert [row.slot for row in _firings(hub)][1:] == [dt.datetime(2027, 3, 28, 1, 0, tzinfo=UTC)]
    assert dt.datetime(2027, 3, 28, 1, 0, tzinfo=UTC).astimezone(STOCKHOLM).strftime("%H:%M %Z") == "03:00 CEST"
    each.run_due(dt.datetime(2027, 10, 30, 21, 0, tzinfo=UTC))  # one catch-up for the months not ticked
    fired.clear()
    for at in _ticks(
        dt.datetime(2027, 10, 30, 21, 0, tzinfo=UTC),
        dt.datetime(2027, 10, 31, 5, 0, tzinfo=UTC),
        dt.timedelta(minutes=5),
    ):
        each.run_due(at)
    assert fired == [TENANT]
    assert _firings(hub)[-1].slot == dt.datetime(2027, 10, 31, 0, 30, tzinfo=UTC)  # 02:30 CEST, the first


def test_slots_missed_while_down_run_once_and_a_failure_is_recorded_and_tried_next_slot(make_hub, fired):
    hub = make_hub(worker=False)
    each = Scheduler(hub.store, hub.jobs)
    at = dt.datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert ("test.failing", TENANT) in each.run_due(at)
    # everything down for five hours and a half: five slots of test.failing missed, one catch-up run
    assert ("test.failing", TENANT) in each.run_due(at + dt.timedelta(hours=5, minutes=30))
    assert ("test.failing", TENANT) not in each.run_due(at + dt.timedelta(hours=5, minutes=31))
    failed = _firings(hub, "test.failing")
    assert [row.slot for row in failed] == [at, at + dt.timedelta(hours=5)]
    assert all(row.outcome == "failed" and "partner down" in row.error and row.finished_at for row in failed)
    assert fired == [TENANT]  # test.job ran at 08:00 and was not stopped by the failing one


def test_a_paused_job_lets_its_slots_pass_and_resumed_waits_for_its_next(make_hub, fired):
    hub = make_hub(worker=False)
    each = Scheduler(hub.store, hub.jobs)
    day = dt.datetime(2026, 3, 2, 2, 30, tzinfo=STOCKHOLM)
    pause(hub.store, hub.config, "test.job", TENANT, by="user:drift")
    each.run_due(day)
    assert fired == []
    (state,) = [s for s in listing(hub.store, hub.config, day) if s.job == "test.job"]
    assert state.paused_by == "user:drift" and state.next_at is None
    resume(hub.store, hub.config, "test.job", TENANT, by="user:drift", now=day + dt.timedelta(hours=1))
    each.run_due(day + dt.timedelta(hours=2))
    assert fired == []  # the slot passed while paused does not run
    each.run_due(day + dt.timedelta(days=1))
    assert fired == [TENANT]
    (state,) = [s for s in listing(hub.store, hub.config, day + dt.timedelta(days=1)) if s.job == "test.job"]
    assert state.cron == "30 2 * * *" and state.last.outcome == "ok"
    assert state.next_at == (day + dt.timedelta(days=2)).astimezone(UTC)
    with hub.store.begin() as conn:
        actions = set(conn.scalars(select(audit.c.action).where(audit.c.subject == "job:test.job")))
    assert actions == {"schedule.pause", "schedule.resume"}


def test_run_now_runs_a_paused_job_at_once_and_records_who(make_hub, fired):
    hub = make_hub(worker=False)
    pause(hub.store, hub.config, "test.job", TENANT, by="user:drift")
    assert run_now(hub.jobs, "test.job", TENANT, by="user:drift")
    assert fired == [TENANT]
    (row,) = _firings(hub)
    assert row.slot is None and row.fired_by == "user:drift" and row.count == 7
    with pytest.raises(scheduler.Rejected, match="no job"):
        run_now(hub.jobs, "test.nothing", TENANT, by="user:drift")
    with pytest.raises(scheduler.Rejected, match="no tenant"):
        pause(hub.store, hub.config, "test.job", "9999", by="user:drift")


def test_the_latest_slot_is_at_or_before_now_in_stockholm_time():
    at = dt.datetime(2026, 12, 2, 1, 45, 0, tzinfo=STOCKHOLM)
    assert latest_slot("*/15 * * * *", at) == at.astimezone(UTC)
    assert latest_slot("*/15 * * * *", at + dt.timedelta(seconds=59)) == at.astimezone(UTC)
    assert latest_slot("0 6 * * *", at) == dt.datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def test_config_check_refuses_a_bad_cron_expression_and_an_unknown_job_with_their_place(tmp_path: Path, fired):
    path = tmp_path / "hub.toml"
    path.write_text(
        '[[tenants]]\ncode = "0125"\nname = "Ekerö kommun"\n[tenants.schedules]\n"visits.poll" = "61 * * * *"\n',
        encoding="utf-8",
    )
    (problem,) = check(path, environ={})
    assert problem.startswith("tenants[0]: schedules.visits.poll: not a cron expression")
    path.write_text(
        '[[tenants]]\ncode = "0125"\nname = "Ekerö kommun"\n[tenants.schedules]\n"visits.pol" = "*/5 * * * *"\n',
        encoding="utf-8",
    )
    assert check(path, environ={}) == []
    from core.config import load

    (problem,) = scheduler.unknown_jobs(load(path))
    assert problem.startswith("tenants[0].schedules.visits.pol: no such job")
