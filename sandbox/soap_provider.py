"""A simulated LOV provider's SOAP order service (provider.wsdl), for the tests and the demo.

`GET /soap?wsdl` serves the project's provider.wsdl pointing here; `POST /soap` answers
SubmitOrder, AmendOrder and CancelOrder with a receipt or a SOAP fault, and keeps the files
DeliverFile brings in `app.state.files`. It reads the body as a
real provider would (hardened parse, XSD, codec), keeps what it received in `app.state.received`,
and answers a repeated delivery of the same order version with the same receipt.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import Response

from adapters.order_xml import NS, element, element_name, read_order, validate, xml_values
from adapters.soap.server import PROVIDER_WSDL, answer, describe, fault, operation_element
from core.errors import Rejected
from schemas.orders import Order, OrderReceipt

KINDS = {"SubmitOrder": "new", "AmendOrder": "amend", "CancelOrder": "cancel"}
"""Each operation and the kind of order it takes."""


@dataclass(frozen=True)
class Received:
    """One call the provider took: the request body as it came, and the order in it."""

    raw: bytes
    order: Order


def instructions_say_reject(order: Order) -> str | None:
    """The default rule: an order whose instructions contain "REJECT" is rejected."""
    return "the instructions say REJECT" if "REJECT" in (order.instructions or "") else None


def create_provider_app(
    *, reject_if: Callable[[Order], str | None] = instructions_say_reject, down_for: int = 0
) -> FastAPI:
    """The provider's service. `reject_if(order)` gives a reason to reject an order (a Client fault
    "order rejected: <reason>") or None; the first `down_for` calls get HTTP 503.

    `app.state.received` lists every call that held an order; `app.state.calls` counts every POST.
    """
    app = FastAPI(title="simulated LOV provider")
    app.state.received = []
    app.state.files = {}  # name -> bytes, from DeliverFile
    app.state.calls = 0
    receipts: dict[tuple[str, int], OrderReceipt] = {}

    @app.get("/soap")
    def description(request: Request) -> Response:
        return describe(request, PROVIDER_WSDL)

    @app.post("/soap")
    async def call(request: Request) -> Response:  # async: one event loop thread, so no locks
        app.state.calls += 1
        if app.state.calls <= down_for:
            return Response("the provider is down for maintenance\n", status_code=503, media_type="text/plain")
        raw = await request.body()
        try:
            operation = operation_element(raw)
            name = element_name(operation)
            if name == "DeliverFile":
                return _take_file(operation)
            if operation.tag != f"{{{NS}}}{name}" or name not in KINDS:
                raise Rejected(f"unknown operation {operation.tag}")
            order = read_order(operation)
            app.state.received.append(Received(raw, order))
            if order.kind != KINDS[name]:
                raise Rejected(f"{name} takes a {KINDS[name]} order, not {order.kind}", where="kind")
            reason = reject_if(order)
            if reason:
                raise Rejected(f"order rejected: {reason}")
        except Rejected as error:
            return fault("Client", error.reason, error.where)
        key = (order.order_id, order.version)
        receipt = receipts.setdefault(
            key, OrderReceipt(order_id=order.order_id, version=order.version, received_at=dt.datetime.now(dt.UTC))
        )
        return answer(element(f"{name}Response", xml_values(receipt)))

    def _take_file(operation) -> Response:
        validate(operation)  # raises Rejected, answered above as a Client fault
        file_name = operation.findtext(f"{{{NS}}}name")
        app.state.files[file_name] = base64.b64decode(operation.findtext(f"{{{NS}}}content") or "")
        receipt = {"name": file_name, "received_at": dt.datetime.now(dt.UTC).isoformat()}
        return answer(element("DeliverFileResponse", receipt))

    return app
