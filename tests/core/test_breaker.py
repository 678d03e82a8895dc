"""The circuit breaker and bulkhead per partner (core.breaker), on a clock the test moves."""

from __future__ import annotations

import threading

import pytest

from core.breaker import FIRST_PAUSE, MAX_PAUSE, Breakers
from core.errors import Misconfigured, Rejected, Transient


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def down() -> None:
    raise Transient("connection refused")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def breakers(clock):
    return Breakers(max_in_flight=2, slot_wait=0.2, clock=clock)


def test_a_failed_call_opens_the_breaker_and_later_calls_fail_fast_without_calling(breakers, clock):
    calls = []
    with pytest.raises(Transient):
        breakers.call("0114/a", down)
    with pytest.raises(Transient, match="is down"):
        breakers.call("0114/a", lambda: calls.append(1))
    assert calls == [] and breakers.is_open("0114/a")
    assert breakers.call("0114/b", lambda: "other partners are not held up") == "other partners are not held up"


def test_after_the_pause_one_call_tries_and_an_answer_closes_the_breaker(breakers, clock):
    with pytest.raises(Transient):
        breakers.call("p", down)
    clock.now += FIRST_PAUSE
    assert breakers.call("p", lambda: "up") == "up"
    assert not breakers.is_open("p")
    assert breakers.call("p", lambda: "again") == "again"


def test_each_failure_doubles_the_pause_up_to_the_most(breakers, clock):
    pauses = []
    for _ in range(8):
        with pytest.raises(Transient):
            breakers.call("p", down)
        waited = 0.0
        while True:  # find the first moment a call is let through again
            clock.now += 0.25
            waited += 0.25
            try:
                breakers.call("p", down)
            except Transient as error:
                if "is down" in str(error):
                    continue
            break
        pauses.append(waited)
        clock.now += MAX_PAUSE * 2  # let the next round start with a call that is let through
    assert pauses[0] == FIRST_PAUSE and max(pauses) == MAX_PAUSE
    assert pauses == sorted(pauses)


def test_while_one_call_tries_a_partner_that_was_down_the_others_fail_fast(breakers, clock):
    with pytest.raises(Transient):
        breakers.call("p", down)
    clock.now += FIRST_PAUSE
    trying, release, seen = threading.Event(), threading.Event(), []

    def slow_probe():
        trying.set()
        release.wait(5)
        return "up"

    probe = threading.Thread(target=lambda: seen.append(breakers.call("p", slow_probe)))
    probe.start()
    trying.wait(5)
    with pytest.raises(Transient, match="is down"):
        breakers.call("p", lambda: "not this one")
    release.set()
    probe.join(5)
    assert seen == ["up"] and not breakers.is_open("p")


@pytest.mark.parametrize("answer", [Rejected("the order is wrong"), Misconfigured("the token is refused")])
def test_an_answer_that_is_not_a_success_still_shows_the_partner_is_up(breakers, clock, answer):
    with pytest.raises(Transient):
        breakers.call("p", down)
    clock.now += FIRST_PAUSE

    def answers():
        raise answer

    with pytest.raises(type(answer)):
        breakers.call("p", answers)
    assert not breakers.is_open("p")


def test_a_partner_may_hold_only_so_many_calls_at_once_and_a_third_waits_its_turn(breakers):
    started, release = threading.Barrier(3), threading.Event()

    def hangs():
        started.wait(5)
        release.wait(5)
        return "done"

    threads = [threading.Thread(target=breakers.call, args=("p", hangs)) for _ in range(2)]
    for thread in threads:
        thread.start()
    started.wait(5)
    with pytest.raises(Transient, match="2 calls under way"):
        breakers.call("p", lambda: "a third, after waiting 0.2 s for a turn")
    assert breakers.call("q", lambda: "another partner") == "another partner"
    threading.Timer(0.05, release.set).start()
    assert breakers.call("p", lambda: "a turn came") == "a turn came"
    for thread in threads:
        thread.join(5)


def test_a_partner_down_for_days_pauses_at_most_the_most(breakers, clock):
    for _ in range(2_000):  # far past 1 024 failures in a row, where an uncapped doubling overflows
        clock.now += MAX_PAUSE
        with pytest.raises(Transient):
            breakers.call("p", down)
    clock.now += MAX_PAUSE
    with pytest.raises(Transient, match="connection refused"):  # let through to the partner, not failed fast
        breakers.call("p", down)
