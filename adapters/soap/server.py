"""The hub's SOAP service for LOV providers (`AcknowledgeOrder`), and the SOAP 1.1 pieces of a service.

`soap_router` serves the hub's WSDL and the operation. The helpers below it (`describe`,
`operation_element`, `answer`, `fault`) are what any document/literal service here needs; the
sandbox's simulated provider uses them too.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from lxml import etree

from adapters.order_xml import MAX_BYTES, NS, element, parse, read_acknowledgement, serialize
from core.errors import Rejected
from schemas.orders import OrderAcknowledgement

log = logging.getLogger(__name__)

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
XSD = "http://www.w3.org/2001/XMLSchema"
CONTENT_TYPE = "text/xml; charset=utf-8"
HERE = Path(__file__).parent
HUB_WSDL = HERE / "hub.wsdl"
PROVIDER_WSDL = HERE / "provider.wsdl"
SCHEMAS = {"orders.xsd": (HERE / "orders.xsd").read_bytes()}
"""The schemas a WSDL imports, served at `?xsd=NAME`."""


def soap_router(
    *,
    authenticate: Callable[[Request], Any],
    on_acknowledge: Callable[[OrderAcknowledgement, Any], dt.datetime],
    max_body_bytes: int = MAX_BYTES,
) -> APIRouter:
    """`GET /soap/lov?wsdl` (and `?xsd=orders.xsd`), and `POST /soap/lov` for AcknowledgeOrder.

    The WSDL and the schema are public (a contract, no data). A call is first passed to
    `authenticate(request)`, which returns the caller or raises: whatever it raises propagates
    unchanged, so the app's own handlers answer (e.g. 401/403). `on_acknowledge(ack, caller)` runs
    in a worker thread and returns the timezone-aware time the hub stored the acknowledgement;
    `Rejected` from it is a Client fault with its reason. A body over `max_body_bytes` is a 413 with
    a Client fault; a DTD, XML that breaks the XSD, or an invalid acknowledgement is a Client
    fault; anything else is a Server fault that says nothing of the cause.
    """
    router = APIRouter(include_in_schema=False)  # described by its WSDL, linked from the OpenAPI document

    @router.get("/soap/lov")
    def description(request: Request) -> Response:
        return describe(request, HUB_WSDL)

    @router.post("/soap/lov")
    async def acknowledge_order(request: Request) -> Response:
        caller = authenticate(request)
        body = await _read_limited(request, max_body_bytes)
        if body is None:
            return fault("Client", f"body over {max_body_bytes} bytes", status=413)
        try:
            call = operation_element(body, max_bytes=max_body_bytes)
            if call.tag != f"{{{NS}}}AcknowledgeOrder":
                raise Rejected("this service has only the operation AcknowledgeOrder", where=call.tag)
            ack = read_acknowledgement(call)
            received_at = await run_in_threadpool(on_acknowledge, ack, caller)
        except Rejected as error:
            return fault("Client", error.reason, error.where)
        except Exception:
            log.exception("AcknowledgeOrder failed")
            return fault("Server", "the hub could not take the acknowledgement now; try again later")
        values = {"order_id": ack.order_id, "received_at": received_at.astimezone(dt.UTC).isoformat()}
        return answer(element("AcknowledgeOrderResponse", values))

    return router


def describe(request: Request, wsdl: Path) -> Response:
    """`?wsdl`: the WSDL pointing at the URL it was fetched from; `?xsd=NAME`: a schema it imports."""
    location = str(request.url.replace(query=None, fragment=None))
    if "wsdl" in request.query_params:
        return Response(wsdl_for(wsdl, location), media_type=CONTENT_TYPE)
    schema = SCHEMAS.get(request.query_params.get("xsd", ""))
    if schema is not None:
        return Response(schema, media_type=CONTENT_TYPE)
    return Response("ask for ?wsdl or ?xsd=orders.xsd\n", status_code=404, media_type="text/plain")


def wsdl_for(wsdl: Path, location: str, *, schemas: str | None = None) -> bytes:
    """The project's WSDL with its soap:address at `location` and its schemas at `location?xsd=NAME`
    (or at `schemas` + NAME)."""
    tree = etree.parse(str(wsdl))  # our own file
    for address in tree.iterfind(f".//{{{WSDL_SOAP}}}address"):
        address.set("location", location)
    for schema_import in tree.iterfind(f".//{{{XSD}}}import"):
        name = quote(schema_import.get("schemaLocation"))
        schema_import.set("schemaLocation", f"{schemas}{name}" if schemas else f"{location}?xsd={name}")
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def operation_element(data: bytes, *, max_bytes: int = MAX_BYTES) -> etree._Element:
    """The one element in the Body of a SOAP 1.1 request, parsed with the hardened parser; else Rejected."""
    envelope = parse(data, max_bytes=max_bytes)
    if envelope.tag != f"{{{SOAP_ENV}}}Envelope":
        raise Rejected("not a SOAP 1.1 Envelope", where=f"line {envelope.sourceline}")
    body = envelope.find(f"{{{SOAP_ENV}}}Body")
    children = [] if body is None else list(body)
    if len(children) != 1:
        raise Rejected("the SOAP Body must hold exactly one operation element", where="Envelope/Body")
    return children[0]


def answer(payload: etree._Element, status: int = 200) -> Response:
    """A SOAP 1.1 envelope around `payload`."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body").append(payload)
    return Response(serialize(envelope), status_code=status, media_type=CONTENT_TYPE)


def fault(code: str, reason: str, where: str | None = None, *, status: int = 500) -> Response:
    """A SOAP 1.1 Fault, `code` "Client" (the request is wrong) or "Server"; the detail is orders.xsd's `fault`."""
    node = etree.Element(f"{{{SOAP_ENV}}}Fault", nsmap={"soap": SOAP_ENV})
    etree.SubElement(node, "faultcode").text = f"soap:{code}"
    etree.SubElement(node, "faultstring").text = reason
    etree.SubElement(node, "detail").append(element("fault", {"reason": reason, "where": where}))
    return answer(node, status)


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is over `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
