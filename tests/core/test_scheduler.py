"""The scheduler: each job fires once per slot, however many schedulers run."""

from __future__ import annotations

import datetime as dt
import threading

from core.scheduler import Scheduler, claim, every, jobs

fired: list[str] = []


@every(60, name="test.tick")
def tick(ctx) -> None:
    fired.append(ctx)


def test_one_firing_per_slot_among_many_schedulers(make_hub):
    hub = make_hub(worker=False)
    slot_start = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)
    fired.clear()
    schedulers = [Scheduler(hub.store, hub.jobs) for _ in range(4)]
    barrier = threading.Barrier(len(schedulers))

    def race(scheduler: Scheduler, at: dt.datetime) -> None:
        barrier.wait()
        scheduler.run_due(at)

    for at in [slot_start, slot_start + dt.timedelta(seconds=59), slot_start + dt.timedelta(seconds=60)]:
        threads = [threading.Thread(target=race, args=(s, at)) for s in schedulers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(fired) == 2  # slot 08:00 once, 08:01 once; 08:00:59 is still the first slot


def test_a_failing_job_does_not_stop_the_others_and_runs_in_its_next_slot(make_hub):
    hub = make_hub(worker=False)
    attempts = []

    @every(3600, name="test.failing")
    def failing(_ctx) -> None:
        attempts.append(1)
        raise RuntimeError("partner down")

    try:
        at = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)
        fired.clear()
        assert {"test.failing", "test.tick"} <= set(Scheduler(hub.store, hub.jobs).run_due(at))
        assert fired == [hub.jobs] and attempts == [1]
        assert not claim(hub.store, jobs()["test.failing"], at)
        assert claim(hub.store, jobs()["test.failing"], at + dt.timedelta(hours=1))
    finally:
        from core import scheduler

        scheduler._jobs.pop("test.failing")
