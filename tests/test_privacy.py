"""Personnummer never reach a log line; the redaction filter masks what might."""

from __future__ import annotations

import logging

from adapters.http_app import create_app
from core.redaction import PERSONNUMMER, RedactingFilter, redact
from sandbox.case_system import CaseSystem
from sandbox.server import LiveServer
from schemas.identity import Personnummer
from tests.conftest import TENANT, TOKEN, wait_for


def test_redact_masks_every_form_and_keeps_other_numbers():
    for text in ["410708-6995", "410708+6995", "4107086995", "194107086995", "19410708-6995", "19570574-9959"]:
        masked = redact(f"person {text} here")
        assert text[-4:] not in masked and "****" in masked
    for harmless in ["order 12345", "ts 1764071234", "id 4cdd5f9a-1544-4572-a962-123456789012", "5560360793x"]:
        assert redact(harmless) == harmless


def test_the_filter_masks_arguments_and_tracebacks():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "visit of %s failed", ("194107086995",), None)
    try:
        raise ValueError("bad 410708-6995")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "6995" not in text and "19410708-****" in text


def test_identity_types_mask_themselves():
    person = Personnummer.parse("19410708-6995")
    assert "6995" not in f"{person} {person!r} {[person]}"


def test_a_whole_exchange_logs_no_personnummer(make_hub, caplog, log_leaks):
    caplog.set_level(logging.DEBUG)
    leaks_before = len(log_leaks)
    hub = make_hub()
    with LiveServer(create_app(hub)) as server:
        case_system = CaseSystem(server.url, TOKEN, TENANT)
        events = [case_system.event() for _ in range(30)]
        case_system.post(events)
        bad = case_system.event()
        bad["payload"]["person"] = bad["payload"]["person"][:-1] + str((int(bad["payload"]["person"][-1]) + 1) % 10)
        assert case_system.post(bad).status_code == 422
        got = []
        wait_for(lambda: got.extend(case_system.read_feed()) or len(got) == 30)
    people = {e["payload"]["person"] for e in events} | {bad["payload"]["person"]}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    assert not any(p in logged or p[2:] in logged for p in people)
    assert not PERSONNUMMER.search(logged)
    assert log_leaks[leaks_before:] == []
