"""How processes log an outage: library repeats held back (core.logs), every line redacted."""

from __future__ import annotations

import logging

from core.logs import RepeatFilter


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, msg: str, *args, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_repeated_line_passes_once_a_minute_and_then_says_how_many_were_held_back():
    clock = Clock()
    repeats = RepeatFilter(window=60, clock=clock)
    template = "Consumer encountered a connection error: %s"
    passed = []
    for second in range(0, 130, 2):  # every 2 s, from one consumer thread per queue
        clock.now = second
        for queue in ("echo", "orders.deliver", "visits.push"):
            line = record(f"dramatiq.worker.ConsumerThread({queue})", template, "Connection refused")
            if repeats.filter(line):
                passed.append((second, line.getMessage()))
    assert [second for second, _ in passed] == [0, 60, 120]
    assert (
        passed[1][1] == "Consumer encountered a connection error: Connection refused "
        "(and 89 more like it in the last 60 s)"
    )


def test_the_hubs_own_lines_other_lines_and_lines_below_warning_are_not_held_back():
    repeats = RepeatFilter(window=60, clock=Clock())
    down = "partner %s is down (%s: %s); its calls fail fast and are retried"
    assert repeats.filter(record("core.breaker", down, "0125/rest", "Transient", "x"))
    assert repeats.filter(record("core.breaker", down, "0125/soap", "Transient", "x"))  # said once by design
    assert repeats.filter(record("dramatiq.worker", "Failed to process %s", "a"))
    assert repeats.filter(record("dramatiq.broker", "Failed to process %s", "a"))  # another logger
    assert not repeats.filter(record("dramatiq.worker", "Failed to process %s", "b"))
    assert all(repeats.filter(record("dramatiq", "Restarting consumer", level=logging.INFO)) for _ in range(5))
