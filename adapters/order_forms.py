"""An order in the forms the transports send it in (specs/provider-orders.md).

- SFTP: the file `order_{orderid}_{version}.xml` in the provider's inbound folder; the provider
  drops `ack_{orderid}_{version}.xml` in its outbound folder (`ACK_PATTERN`, no done-file).
- REST: `POST {base}/orders` a new order, `PUT {base}/orders/{id}` an amendment,
  `DELETE {base}/orders/{id}` with a JSON reason a cancellation.
- SOAP: SubmitOrder, AmendOrder or CancelOrder of provider.wsdl; the receipt echoes id and version.
"""

from __future__ import annotations

from adapters.order_xml import encode_order, xml_values
from adapters.transport import Outgoing, RestRequest, SoapCall
from schemas.orders import Order

ACK_PATTERN = "ack_*.xml"

SOAP_OPERATIONS = {"new": "SubmitOrder", "amend": "AmendOrder", "cancel": "CancelOrder"}


def order_file_name(order: Order) -> str:
    return f"order_{order.order_id}_{order.version}.xml"


def outgoing(order: Order) -> Outgoing:
    """The order as every transport sends it; the SOAP form carries the canonical text (12-digit
    personnummer, 10-digit organisation number)."""
    return Outgoing(
        name=order_file_name(order),
        data=encode_order(order),
        rest=_rest(order),
        soap=SoapCall(
            SOAP_OPERATIONS[order.kind], xml_values(order), {"order_id": order.order_id, "version": order.version}
        ),
    )


def _rest(order: Order) -> RestRequest:
    if order.kind == "new":
        return RestRequest("POST", "/orders", order.model_dump(mode="json"))
    if order.kind == "amend":
        return RestRequest("PUT", f"/orders/{order.order_id}", order.model_dump(mode="json"))
    return RestRequest("DELETE", f"/orders/{order.order_id}", {"reason": order.cancel_reason, "version": order.version})
