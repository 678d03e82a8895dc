"""The inbound HTTP app: canonical events in, the case system's feed out, health and metrics, and
the operations console under /console (adapters.console).

Every answer that says "received" is given only after the store has committed. No input gets a
500: what is wrong is answered 4xx naming its field, and anything unexpected is answered by the
`Guard` with a correlation id only, its traceback logged redacted.
"""

from __future__ import annotations

import json
import logging
import traceback
import uuid

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from adapters import console, openapi
from adapters.openapi import RETRY_AFTER_HEADER, answer, partner_operation
from core import audit, metrics, outbox
from core.config import Caller
from core.errors import NotAllowed, Rejected
from core.figures import Collector
from core.intake import envelopes_from_json
from core.messages import CONFLICT
from core.outage import Outage
from core.redaction import redact
from core.runtime import Hub
from core.store import is_outage
from schemas.api import ORDER_EXAMPLE, CaseSystemEvents, EventsAccepted, EventsConflicting, Feed, Health, Readiness
from schemas.bounded import error_message

MAX_POSITION = 2**63 - 1
"""The largest feed position (a BIGINT)."""
RETRY_AFTER = 5
"""Seconds a caller is asked to wait when the store is down."""
PROBES = {"/healthz", "/readyz", "/metrics"}
"""Paths that do not need the store: a request to them that works says nothing of it."""

log = logging.getLogger(__name__)


class Refused(Exception):
    """An HTTP request refused with a status and a reason for the caller."""

    def __init__(self, status: int, reason: str, where: str | None = None) -> None:
        self.status, self.reason, self.where = status, reason, where


def create_app(hub: Hub, routers: list[APIRouter] = ()) -> FastAPI:
    """The hub's HTTP app; `routers` are the flows' own endpoints (see `flows.routes`)."""
    app = FastAPI(title="casehub", version="1", docs_url=None, redoc_url=None)  # their pages load from a CDN
    app.add_middleware(Guard)
    app.state.hub = hub
    for router in routers:
        app.include_router(router)
    app.state.console = console.install(app, hub)
    openapi.install(app)

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> JSONResponse:
        metrics.refused.labels("http", str(error.status)).inc()
        body = {"error": error.reason} | ({"where": error.where} if error.where else {})
        return JSONResponse(body, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        return JSONResponse({"error": error_message(first), "where": ".".join(map(str, first["loc"]))}, status_code=422)

    @app.post(
        "/api/v1/events",
        status_code=202,
        tags=["case system"],
        summary="Send events: one envelope or a list of them",
        operation_id="send_events",
        **partner_operation(
            body=CaseSystemEvents,
            answers={202: EventsAccepted, 409: EventsConflicting},
            examples={"an order issued to a provider": ORDER_EXAMPLE},
        ),
    )
    async def post_events(request: Request) -> dict:
        caller = authenticate(hub, request, kinds={"case_system"})
        raw = await read_body(request, hub.settings.max_body_bytes)
        try:
            items = envelopes_from_json(raw, hub.config, sender=caller.kind, max_batch=hub.settings.max_batch)
        except NotAllowed as error:
            raise Refused(403, error.reason, error.where) from None
        except Rejected as error:
            raise Refused(422, error.reason, error.where) from None
        for i, (envelope, _raw) in enumerate(items):
            if envelope.tenant != caller.tenant:
                raise Refused(403, f"the token is not for tenant {envelope.tenant}", f"[{i}].tenant")
        result = await run_in_threadpool(hub.accept, items, channel="http")
        body = {"accepted": result.stored, "duplicates": result.duplicates}
        if not result.conflicts:
            return body
        conflicts = [
            {"id": items[i][0].id, "where": f"[{i}].id" if len(items) > 1 else "id", "error": CONFLICT}
            for i in result.conflicts
        ]
        return JSONResponse(
            body
            | {
                "error": f"{len(conflicts)} of {len(items)} envelopes conflict with stored ones",
                "conflicts": conflicts,
            },
            status_code=409,
        )

    @app.get(
        "/api/v1/feed",
        tags=["case system"],
        summary="Read what the hub has for the case system, after a cursor",
        operation_id="read_feed",
        **partner_operation(answers={200: Feed}),
    )
    def get_feed(
        request: Request, since: int = Query(0, ge=0, le=MAX_POSITION), limit: int = Query(500, ge=1, le=5000)
    ) -> dict:
        caller = authenticate(hub, request, kinds={"case_system"})
        with hub.store.begin() as conn:
            events = outbox.feed(conn, tenant=caller.tenant, since=since, limit=limit)
            if events:
                audit.record(
                    conn,
                    actor=f"partner:{caller.partner}",
                    action="feed.read",
                    tenant=caller.tenant,
                    detail=f"positions {events[0][0]}-{events[-1][0]}",
                )
        next_cursor = events[-1][0] if events else since
        body = '{"events":[' + ",".join(e for _, e in events) + f'],"next_cursor":{next_cursor}}}'
        return Response(body, media_type="application/json")

    @app.get("/healthz", tags=["operations"], response_model=None, responses={200: answer(Health, "alive")})
    def health() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        responses={
            200: answer(Readiness, "the store and the broker answer"),
            503: answer(Readiness, "the store or the broker does not answer", RETRY_AFTER_HEADER),
        },
    )
    def ready() -> JSONResponse:
        """Readiness: 200 when the store and the broker answer, else 503 saying which does not, so
        that a load balancer sends the partners to another process."""
        checks = {
            "store": "ok" if hub.store.reachable() else "unreachable",
            "broker": "ok" if hub.bus.reachable() else "unreachable",
        }
        ready = all(state == "ok" for state in checks.values())
        return JSONResponse(
            checks | {"status": "ready" if ready else "not ready"},
            status_code=200 if ready else 503,
            headers={} if ready else {"Retry-After": str(RETRY_AFTER)},
        )

    figures = CollectorRegistry(auto_describe=False)
    figures.register(Collector(hub.store, hub.bus))

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={
            200: {"description": "Prometheus' text format", "content": {"text/plain": {"schema": {"type": "string"}}}}
        },
    )
    def prometheus() -> Response:
        """The process's counters, and the figures of the store and the queues (core.figures)."""
        try:
            found = generate_latest(figures)
        except Exception as error:  # an outage of the store: the process's own counters still answer
            if not is_outage(error):
                raise
            log.warning("figures not served: %s", type(error).__name__)
            found = b""
        return Response(generate_latest() + found, media_type=CONTENT_TYPE_LATEST)

    return app


def authenticate(hub: Hub, request: Request, *, kinds: set[str]) -> Caller:
    """The partner behind the bearer token, or 401/403."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Refused(401, "a bearer token is required")
    caller = hub.tokens.caller(token.strip())
    if caller is None:
        raise Refused(401, "unknown token")
    if caller.kind not in kinds:
        raise Refused(403, f"a {caller.kind} partner may not call this")
    return caller


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class Guard:
    """ASGI middleware that answers anything a handler did not: a store outage with 503 and
    `Retry-After`, any other error with 500 and a correlation id only. The traceback is logged
    redacted under that id, and the exception goes no further, so the server keeps the
    connection open and writes nothing of its own."""

    def __init__(self, app) -> None:
        self.app = app
        self.store = Outage("http intake", log)  # the event loop's one thread is its only user

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching)
            if scope.get("path") not in PROBES:
                self.store.ok()
        except Exception as error:  # the last place an error can be answered well
            correlation_id = uuid.uuid4().hex
            status, headers = 500, [(b"content-type", b"application/json")]
            if is_outage(error):  # said once per outage, not once per request
                self.store.failed(error)
                status, headers = 503, headers + [(b"retry-after", str(RETRY_AFTER).encode())]
            else:
                log.error(
                    "unexpected %s answering %s %s, correlation id %s\n%s",
                    type(error).__name__,
                    scope.get("method"),
                    scope.get("path"),
                    correlation_id,
                    redact(traceback.format_exc()),
                )
            metrics.refused.labels("http", str(status)).inc()
            if started:
                return
            body = {"error": "the hub could not handle the request", "correlation_id": correlation_id}
            if status == 503:
                body["error"] = "the hub's store is not reachable now; try again later"
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": json.dumps(body).encode()})
