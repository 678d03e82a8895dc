"""A simulated LOV provider with a REST API (specs/provider-orders.md, "REST").

It takes orders, answers 422 with a reason to any whose instructions say REJECT, answers 503 to
the first `down_for` requests, keeps every request hanging while `app.state.answering` is clear,
and keeps every request's bytes for the tests to look at. A repeat of the same order and version
gets the same receipt.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from schemas.orders import Order


def create_rest_provider_app(*, token: str, down_for: int = 0, on_order=None) -> FastAPI:
    """`on_order(order)` is called once for each new order and version taken (e.g. to acknowledge it)."""
    app = FastAPI()
    app.state.received = []  # (method, path, raw body)
    app.state.orders = {}  # (order_id, version) -> received_at
    app.state.down_for = down_for
    app.state.files = {}  # name -> bytes: files the hub sent (the reimbursement basis)
    app.state.answering = threading.Event()
    app.state.answering.set()
    lock = threading.Lock()

    async def take(request: Request, order: Order | None, order_id: str, version: int) -> JSONResponse:
        raw = await request.body()
        with lock:
            app.state.received.append((request.method, request.url.path, raw))
        await asyncio.to_thread(app.state.answering.wait)
        with lock:
            if app.state.down_for > 0:
                app.state.down_for -= 1
                return JSONResponse({"error": "service unavailable"}, status_code=503)
        if request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error": "unknown token"}, status_code=401)
        if order is not None and "REJECT" in (order.instructions or ""):
            return JSONResponse({"reason": f"order rejected: {order.instructions}"}, status_code=422)
        with lock:
            key = (order_id, version)
            new = key not in app.state.orders
            received_at = app.state.orders.setdefault(key, dt.datetime.now(dt.timezone.utc))
        if new and on_order is not None and order is not None:
            on_order(order)
        return JSONResponse({"order_id": order_id, "received_at": received_at.isoformat()}, status_code=201)

    @app.post("/orders")
    async def new(request: Request) -> JSONResponse:
        order = Order.model_validate_json(await request.body())
        return await take(request, order, order.order_id, order.version)

    @app.put("/orders/{order_id}")
    async def amend(order_id: str, request: Request) -> JSONResponse:
        order = Order.model_validate_json(await request.body())
        return await take(request, order, order_id, order.version)

    @app.put("/files/{name}")
    async def file(name: str, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error": "unknown token"}, status_code=401)
        app.state.files[name] = await request.body()
        return JSONResponse({"name": name}, status_code=201)

    @app.delete("/orders/{order_id}")
    async def cancel(order_id: str, request: Request) -> JSONResponse:
        body = json.loads(await request.body() or b"{}")
        return await take(request, None, order_id, int(body.get("version", 0)))

    return app
