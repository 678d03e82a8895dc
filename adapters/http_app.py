"""The inbound HTTP app: canonical events in, the case system's feed out, health and metrics.

Every answer that says "received" is given only after the store has committed.
"""
from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core import audit, metrics, outbox
from core.config import Caller
from core.errors import Rejected
from core.intake import envelopes_from_json
from core.runtime import Hub

log = logging.getLogger(__name__)


class Refused(Exception):
    """An HTTP request refused with a status and a reason for the caller."""

    def __init__(self, status: int, reason: str, where: str | None = None) -> None:
        self.status, self.reason, self.where = status, reason, where


def create_app(hub: Hub, routers: list[APIRouter] = ()) -> FastAPI:
    """The hub's HTTP app; `routers` are the flows' own endpoints (see `flows.routes`)."""
    app = FastAPI(title="casehub", version="1")
    app.state.hub = hub
    for router in routers:
        app.include_router(router)

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> JSONResponse:
        metrics.refused.labels("http", str(error.status)).inc()
        body = {"error": error.reason} | ({"where": error.where} if error.where else {})
        return JSONResponse(body, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        return JSONResponse({"error": first["msg"], "where": ".".join(map(str, first["loc"]))}, status_code=422)

    @app.post("/api/v1/events", status_code=202)
    async def post_events(request: Request) -> dict:
        caller = authenticate(hub, request, kinds={"case_system"})
        raw = await read_body(request, hub.settings.max_body_bytes)
        try:
            items = envelopes_from_json(raw, hub.config, max_batch=hub.settings.max_batch)
        except Rejected as error:
            raise Refused(422, error.reason, error.where) from None
        for i, (envelope, _raw) in enumerate(items):
            if envelope.tenant != caller.tenant:
                raise Refused(403, f"the token is not for tenant {envelope.tenant}", f"[{i}].tenant")
        result = await run_in_threadpool(hub.accept, items, channel="http")
        return {"accepted": result.stored, "duplicates": result.duplicates}

    @app.get("/api/v1/feed")
    def get_feed(request: Request, since: int = 0, limit: int = 500) -> dict:
        caller = authenticate(hub, request, kinds={"case_system"})
        if since < 0 or not 1 <= limit <= 5000:
            raise Refused(422, "since must be >= 0 and limit 1-5000")
        with hub.store.begin() as conn:
            events = outbox.feed(conn, tenant=caller.tenant, since=since, limit=limit)
            if events:
                audit.record(conn, actor=f"partner:{caller.partner}", action="feed.read", tenant=caller.tenant,
                             detail=f"positions {events[0][0]}-{events[-1][0]}")
        next_cursor = events[-1][0] if events else since
        body = '{"events":[' + ",".join(e for _, e in events) + f'],"next_cursor":{next_cursor}}}'
        return Response(body, media_type="application/json")

    @app.get("/healthz")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

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
