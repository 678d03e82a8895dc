"""The inbound HTTP app over a live server: store first, and every bad request a 4xx that stores nothing."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from adapters.http_app import create_app
from core.store.tables import messages, outbox
from sandbox.case_system import CaseSystem
from sandbox.server import LiveServer
from tests.conftest import TENANT, TOKEN, wait_for


@pytest.fixture
def served(make_hub):
    hub = make_hub()
    with LiveServer(create_app(hub)) as server:
        yield hub, server.url


def stored_count(hub) -> int:
    with hub.store.begin() as conn:
        return conn.scalar(select(func.count()).select_from(messages))


def post(url: str, body: bytes, token: str | None = TOKEN, **headers) -> httpx.Response:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    headers.setdefault("Content-Type", "application/json")
    return httpx.post(f"{url}/api/v1/events", content=body, headers=headers, timeout=10)


def test_accepted_events_are_stored_before_the_answer_and_reach_the_feed(served):
    hub, url = served
    case_system = CaseSystem(url, TOKEN, TENANT)
    events = [case_system.event() for _ in range(20)]
    answer = case_system.post(events)
    assert answer.status_code == 202
    assert answer.json()["accepted"] == [e["id"] for e in events]
    with hub.store.begin() as conn:
        stored = set(conn.scalars(select(messages.c.id).where(messages.c.direction == "in")))
        raw = conn.scalar(select(messages.c.raw).where(messages.c.id == events[0]["id"]))
    assert stored == {e["id"] for e in events}  # durable by the time the 202 came back
    assert json.loads(raw) == events[0]
    receipts = []
    wait_for(lambda: receipts.extend(case_system.read_feed()) or len(receipts) == 20, what="20 receipts")
    assert {r["payload"]["of"] for r in receipts} == {e["id"] for e in events}
    assert all(r["type"] == "hub.receipt" and r["tenant"] == TENANT for r in receipts)
    with hub.store.begin() as conn:
        to_feed = conn.execute(
            select(outbox.c.position, outbox.c.sent_at).where(outbox.c.destination.like("exchange:%"))
        ).all()
    assert sorted(position for position, _ in to_feed) == list(range(1, 21))
    assert all(sent_at is not None for _, sent_at in to_feed)  # or the relay would send them again


def test_posting_the_same_event_twice_processes_it_once(served):
    hub, url = served
    case_system = CaseSystem(url, TOKEN, TENANT)
    event = case_system.event()
    assert case_system.post(event).json() == {"accepted": [event["id"]], "duplicates": []}
    assert case_system.post(event).json() == {"accepted": [], "duplicates": [event["id"]]}
    receipts = []
    wait_for(lambda: receipts.extend(case_system.read_feed()) or receipts, what="a receipt")
    hub.relay.drain()
    with hub.store.begin() as conn:
        dispatches = conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.message_id == event["id"]))
    assert dispatches == 1 and len(receipts) == 1


@pytest.mark.parametrize(
    ("body", "status", "where", "reason"),
    [
        (b'{"id": "x", "type": ', 422, "body", "not valid JSON"),
        (b"[]", 422, "body", "non-empty list"),
        (b'"just a string"', 422, "body", "envelope object"),
        (json.dumps({"type": "case.event_recorded", "tenant": "0125"}).encode(), 422, "source", "Field required"),
        (
            json.dumps({"type": "case.unknown", "tenant": "0125", "source": "x"}).encode(),
            422,
            "type",
            "unknown document type",
        ),
        (b"\xff\xfe\x00garbage", 422, "body", "not valid JSON"),
    ],
)
def test_malformed_bodies_are_refused_with_the_reason(served, body, status, where, reason):
    hub, url = served
    answer = post(url, body)
    assert answer.status_code == status
    assert answer.json()["where"] == where and reason in answer.json()["error"]
    assert stored_count(hub) == 0


def test_a_bad_field_deep_in_a_batch_is_named(served):
    hub, url = served
    case_system = CaseSystem(url, TOKEN, TENANT)
    events = [case_system.event() for _ in range(3)]
    events[2]["payload"]["person"] = "19410708-6996"  # wrong check digit
    answer = case_system.post(events)
    assert answer.status_code == 422
    assert answer.json() == {"error": "wrong check digit", "where": "[2].payload.person"}
    assert "6996" not in answer.text
    assert stored_count(hub) == 0  # all or nothing: the sender fixes and resends the batch


def test_a_body_over_the_limit_is_refused_before_it_is_read(served):
    hub, url = served
    answer = post(url, b"[" + b" " * (hub.settings.max_body_bytes + 10) + b"]")
    assert answer.status_code == 413 and "over" in answer.json()["error"]

    def chunks():  # no Content-Length: the limit holds on the stream too
        for _ in range(40):
            yield b" " * 65536

    answer = httpx.post(f"{url}/api/v1/events", content=chunks(), headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 413
    assert stored_count(hub) == 0


def test_too_many_events_in_one_request(served):
    hub, url = served
    case_system = CaseSystem(url, TOKEN, TENANT)
    one = case_system.event()
    answer = post(url, json.dumps([one] * (hub.settings.max_batch + 1)).encode())
    assert answer.status_code == 422 and "at most" in answer.json()["error"]


@pytest.mark.parametrize(
    ("token", "tenant", "status", "reason"),
    [
        (None, TENANT, 401, "bearer token is required"),
        ("wrong", TENANT, 401, "unknown token"),
        (TOKEN, "0180", 403, "not for tenant 0180"),  # a tenant of the hub, but not the caller's
        (TOKEN, "9999", 422, "unknown tenant 9999"),
    ],
)
def test_unknown_tenants_and_wrong_tokens_are_refused(served, token, tenant, status, reason):
    hub, url = served
    event = CaseSystem(url, TOKEN, TENANT).event() | {"tenant": tenant}
    answer = post(url, json.dumps(event).encode(), token=token)
    assert answer.status_code == status and reason in answer.json()["error"]
    assert stored_count(hub) == 0


def test_the_feed_needs_a_token_and_only_shows_the_callers_tenant(served):
    hub, url = served
    assert httpx.get(f"{url}/api/v1/feed").status_code == 401
    answer = httpx.get(f"{url}/api/v1/feed", params={"since": -1}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 422
    answer = httpx.get(f"{url}/api/v1/feed", params={"since": "x"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 422


def test_metrics_and_health(served):
    _hub, url = served
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert "casehub_envelopes_accepted_total" in httpx.get(f"{url}/metrics").text


def test_the_same_id_with_another_document_is_a_conflict_and_the_rest_is_taken(served):
    hub, url = served
    case_system = CaseSystem(url, TOKEN, TENANT)
    first, again, new = case_system.event(), case_system.event(), case_system.event()
    assert case_system.post([first, again]).status_code == 202
    changed = first | {
        "payload": first["payload"] | {"kind": "decision" if first["payload"]["kind"] != "decision" else "note"}
    }
    answer = case_system.post([changed, again, new])
    assert answer.status_code == 409
    body = answer.json()
    assert body["accepted"] == [new["id"]] and body["duplicates"] == [again["id"]]
    assert body["conflicts"] == [
        {
            "id": first["id"],
            "where": "[0].id",
            "error": "already received with another document; a changed message needs a new id",
        }
    ]
    single = case_system.post(changed)
    assert single.status_code == 409 and single.json()["conflicts"][0]["where"] == "id"
    with hub.store.begin() as conn:
        kept = json.loads(conn.scalar(select(messages.c.raw).where(messages.c.id == first["id"])))
    assert kept == first  # the stored message is never replaced
    with hub.store.begin() as conn:
        assert conn.scalar(select(func.count()).select_from(messages).where(messages.c.direction == "in")) == 3


def test_a_document_type_the_caller_may_not_send_is_refused_with_403(served):
    hub, url = served
    event = CaseSystem(url, TOKEN, TENANT).event() | {
        "type": "reimbursement.basis_approved",
        "payload": {"run_id": 1, "provider_org": "5560360793", "period": "2026-03"},
    }
    answer = post(url, json.dumps(event).encode())
    assert answer.status_code == 403
    assert answer.json() == {"error": "a case_system may not send 'reimbursement.basis_approved'", "where": "type"}
    assert stored_count(hub) == 0


PERSON = "194107086995"


def failing_routes() -> list[APIRouter]:
    """Endpoints that fail as nothing in the hub should: with personal data in the error, and as
    the store does when it is down."""
    router = APIRouter()

    @router.get("/test/bug")
    def bug() -> dict:
        raise RuntimeError(f"a bug that quotes {PERSON}")

    @router.get("/test/store-down")
    def store_down() -> dict:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    return [router]


def test_an_unexpected_error_answers_a_correlation_id_only_and_the_connection_stays_usable(make_hub, caplog, log_leaks):
    caplog.set_level(logging.DEBUG)
    leaks_before = len(log_leaks)
    hub = make_hub(worker=False)
    with LiveServer(create_app(hub, failing_routes())) as server, httpx.Client(base_url=server.url) as client:
        answer = client.get("/test/bug")
        assert answer.status_code == 500
        assert set(answer.json()) == {"error", "correlation_id"} and PERSON not in answer.text
        assert client.get("/healthz").json() == {"status": "ok"}  # the same keep-alive connection
        down = client.get("/test/store-down")
        assert down.status_code == 503 and down.headers["retry-after"] == "5" and "correlation_id" in down.json()
        assert client.get("/healthz").status_code == 200
    logged = [record for record in caplog.records if answer.json()["correlation_id"] in record.getMessage()]
    assert logged and "RuntimeError" in logged[0].getMessage() and "19410708-****" in logged[0].getMessage()
    assert PERSON not in caplog.text
    assert not [r for r in caplog.records if r.name.startswith("uvicorn") and r.levelno >= logging.ERROR]
    assert log_leaks[leaks_before:] == []


def test_the_http_servers_own_loggers_write_through_the_redacting_handlers(make_hub):
    """uvicorn runs with log_config=None (as `casehub serve` does), so no library logger has a
    handler of its own: every line goes through the root logger's handlers, which `logs.install`
    filters, and which the scan of the whole test run reads."""
    hub = make_hub(worker=False)
    with LiveServer(create_app(hub)):
        own = {
            name: writing
            for name, logger in logging.Logger.manager.loggerDict.items()
            if isinstance(logger, logging.Logger)
            and (writing := [h for h in logger.handlers if not isinstance(h, logging.NullHandler)])
        }
        assert not own, own
        assert logging.getLogger("uvicorn").propagate and logging.getLogger("uvicorn.error").propagate
        # uvicorn.access is switched off whole (access_log=False): it writes nowhere


def test_readiness_and_intake_say_so_while_the_store_is_down(make_hub, hub_config):
    from core.runtime import Hub
    from core.settings import Settings
    from sandbox.server import free_port

    hub = make_hub(worker=False)
    with LiveServer(create_app(hub)) as server:
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 200 and ready.json() == {"store": "ok", "broker": "ok", "status": "ready"}
    down = Hub(
        Settings(broker_url="memory://", database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/casehub"),
        hub_config,
    )
    try:
        with LiveServer(create_app(down)) as server:
            ready = httpx.get(f"{server.url}/readyz")
            assert ready.status_code == 503 and ready.json()["store"] == "unreachable"
            event = CaseSystem(server.url, TOKEN, TENANT).event()
            answer = post(server.url, json.dumps(event).encode())
            assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
            assert "store is not reachable" in answer.json()["error"]
            assert httpx.get(f"{server.url}/healthz").status_code == 200  # alive, only not ready
    finally:
        down.stop()


def test_the_figures_behind_metrics_count_messages_the_outbox_and_the_queues(make_hub):
    """What the console's overview shows, /metrics serves: messages per flow, the backlog and
    the messages waiting on each step's queue (no worker takes them here)."""
    from core.figures import figures

    hub = make_hub(worker=False)
    queue = hub.bus.steps["echo"].queue
    with LiveServer(create_app(hub)) as server:
        case_system = CaseSystem(server.url, TOKEN, TENANT)
        assert case_system.post([case_system.event() for _ in range(3)]).status_code == 202
        # and none left in the outbox: the relay marks a row sent after publishing it
        found = wait_for(
            lambda: (f := figures(hub.store, hub.bus)).queues and f.queues[queue] >= 1 and not f.backlog and f
        )
        assert sum(count for (flow, _), count in found.hourly.items() if flow == "case") == 3
        assert found.open_letters == 0
        text = httpx.get(f"{server.url}/metrics").text
    waiting = sum(hub.bus.queue_depths().values())
    assert f'casehub_queue_messages{{queue="{queue}"}} {float(found.queues[queue])}' in text
    assert 'casehub_messages_24h{flow="case"} 3.0' in text and "casehub_outbox_backlog 0.0" in text
    assert waiting == found.queues[queue] >= 1
