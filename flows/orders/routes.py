"""The providers' ways to acknowledge an order: REST `POST /api/v1/orders/{id}/acknowledgement`
and the hub's SOAP service `AcknowledgeOrder` at /soap/lov (its WSDL at `GET /soap/lov?wsdl`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from adapters.http_app import Refused, authenticate, read_body
from adapters.openapi import partner_operation
from adapters.soap.server import soap_router
from core.errors import Rejected
from core.runtime import Hub
from flows.orders.acknowledgements import acknowledge
from schemas.api import ACKNOWLEDGEMENT_EXAMPLE, AcknowledgementReceived, Problem
from schemas.bounded import error_message
from schemas.orders import ORDER_ID, OrderAcknowledgement

PROVIDERS = {"provider"}


def routes(hub: Hub) -> list[APIRouter]:
    rest = APIRouter()

    @rest.post(
        "/api/v1/orders/{order_id}/acknowledgement",
        status_code=202,
        tags=["providers"],
        summary="Acknowledge an order: accepted, or rejected with a reason",
        operation_id="acknowledge_order",
        **partner_operation(
            body=OrderAcknowledgement,
            answers={
                202: AcknowledgementReceived,
                409: (Problem, "an unknown order, a version other than the one delivered last, or another provider's"),
            },
            examples={"an acceptance": ACKNOWLEDGEMENT_EXAMPLE},
        ),
    )
    async def post_acknowledgement(order_id: Annotated[str, Path(pattern=ORDER_ID)], request: Request) -> dict:
        caller = authenticate(hub, request, kinds=PROVIDERS)
        raw = await read_body(request, hub.settings.max_body_bytes)
        try:
            ack = OrderAcknowledgement.model_validate_json(raw)
        except ValidationError as error:
            first = error.errors()[0]
            raise Refused(422, error_message(first), ".".join(map(str, first["loc"])) or "body") from None
        if ack.order_id != order_id:
            raise Refused(422, f"the body is for order {ack.order_id}, the path for {order_id}", "order_id")
        try:
            received_at = await run_in_threadpool(acknowledge, hub.store, hub.config, ack, caller, raw)
        except Rejected as error:
            raise Refused(409, error.reason, error.where) from None
        return {"order_id": ack.order_id, "received_at": received_at.isoformat()}

    def on_soap_acknowledge(ack: OrderAcknowledgement, caller) -> object:
        return acknowledge(hub.store, hub.config, ack, caller, None)

    soap = soap_router(
        authenticate=lambda request: authenticate(hub, request, kinds=PROVIDERS),
        on_acknowledge=on_soap_acknowledge,
        max_body_bytes=hub.settings.max_body_bytes,
    )
    return [rest, soap]
