"""Background loops through an outage: one line when it stops, one when it works again, a short backoff."""

from __future__ import annotations

import logging

from core import metrics
from core.outage import MAX_BACKOFF, Outage


def test_an_outage_is_logged_once_and_its_end_once_with_a_backoff_capped_at_five_seconds(caplog):
    caplog.set_level(logging.DEBUG, logger="test.loop")
    outage = Outage("test loop", logging.getLogger("test.loop"))
    waits = []
    for attempt in range(8):
        try:
            raise ConnectionError(f"connection refused 194107086995 (attempt {attempt})")
        except ConnectionError as error:
            waits.append(outage.failed(error))
    assert waits == sorted(waits) and waits[0] < 1 and waits[-1] == MAX_BACKOFF == 5.0
    assert metrics.loop_up.labels("test loop")._value.get() == 0
    outage.ok()
    outage.ok()
    lines = [record.getMessage() for record in caplog.records if record.name == "test.loop"]
    assert len(lines) == 2
    assert lines[0].startswith("test loop stopped: ConnectionError") and "19410708-****" in lines[0]
    assert "194107086995" not in lines[0]
    assert lines[1] == "test loop works again after 8 failed attempts"
    assert metrics.loop_up.labels("test loop")._value.get() == 1


def test_an_outage_of_days_still_waits_the_capped_backoff():
    outage = Outage("long loop", logging.getLogger("test.long"))
    outage.failures = 100_000  # a week and more of failing every five seconds
    assert outage.failed(ConnectionError("still down")) == MAX_BACKOFF
