"""The SOAP order channel: delivers orders to a provider's SOAP service (provider.wsdl) with zeep.

A channel is one small interface: `deliver(order) -> OrderReceipt`. A Client fault (the order
itself is wrong) and an HTTP 4xx are `Rejected` at once; a Server fault, HTTP 5xx, 408 or 429,
an answer that is not SOAP, a refused connection and a timeout are retried here a few times with
a short backoff, then `Transient`.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import requests
from lxml import etree
from pydantic import ValidationError
from zeep import Client, Settings
from zeep.cache import InMemoryCache, SqliteCache
from zeep.exceptions import Fault, TransportError, XMLSyntaxError
from zeep.transports import Transport

from adapters.order_xml import NS, xml_values
from adapters.retry import transient_retrying
from core.errors import Rejected, Transient
from schemas.orders import Order, OrderReceipt

log = logging.getLogger(__name__)

WSDL = Path(__file__).with_name("provider.wsdl")
BINDING = "{urn:casehub:lov:provider:1}ProviderBinding"
OPERATIONS = {"new": "SubmitOrder", "amend": "AmendOrder", "cancel": "CancelOrder"}
ATTEMPTS = 4
"""Calls per delivery; between them the backoff waits 0.25 s, 0.5 s, 1 s (doubling, at most 2 s)."""

RETRIED_HTTP_STATUSES = frozenset({408, 429})
"""HTTP statuses below 500 that mean "not now" rather than "wrong"."""


class _NoEnvelopes(logging.Filter):
    """Drops zeep's DEBUG dumps of whole SOAP messages: they hold names, addresses and personnummer."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


logging.getLogger("zeep.transports").addFilter(_NoEnvelopes())


class SoapOrderChannel:
    """A provider's SOAP order service at `endpoint_url`, called with the project's provider.wsdl.

    `timeout` (seconds) bounds every call; `cache_path` is a SQLite file for zeep's cache of
    remote schemas (in memory without one).
    """

    def __init__(self, endpoint_url: str, *, timeout: float = 10, cache_path: str | None = None) -> None:
        self.endpoint_url = endpoint_url
        self._service = _service(endpoint_url, timeout, cache_path)

    def deliver(self, order: Order) -> OrderReceipt:
        """Calls SubmitOrder, AmendOrder or CancelOrder by `order.kind`; the provider's receipt."""
        operation = getattr(self._service, OPERATIONS[order.kind])
        values = xml_values(order)  # the canonical text zeep sends: 12-digit personnummer, 10-digit org number
        answer = transient_retrying(attempts=ATTEMPTS, backoff=0.25, max_backoff=2)(_call, operation, values)
        try:
            return OrderReceipt(order_id=answer.order_id, version=answer.version, received_at=answer.received_at)
        except (AttributeError, ValidationError) as error:
            raise Rejected(f"the provider's receipt is not valid: {error}", where=OPERATIONS[order.kind]) from None

    def send_file(self, name: str, data: bytes) -> None:
        """Calls DeliverFile: a file for the provider (its reimbursement basis); a resend replaces it."""
        answer = transient_retrying(attempts=ATTEMPTS, backoff=0.25, max_backoff=2)(
            _call, self._service.DeliverFile, {"name": name, "content": data}
        )
        if getattr(answer, "name", None) != name:
            raise Rejected(
                f"the provider's receipt names {getattr(answer, 'name', None)!r}, not {name!r}", where="DeliverFile"
            )


@functools.cache
def _service(endpoint_url: str, timeout: float, cache_path: str | None) -> Any:
    """The zeep service proxy for one endpoint, built once per process."""
    transport = Transport(
        cache=SqliteCache(path=cache_path) if cache_path else InMemoryCache(),
        timeout=timeout,
        operation_timeout=timeout,
    )
    settings = Settings(strict=True, forbid_dtd=True, forbid_entities=True, xsd_ignore_sequence_order=True)
    return Client(str(WSDL), transport=transport, settings=settings).create_service(BINDING, endpoint_url)


def _call(operation: Any, values: dict[str, Any]) -> Any:
    """One call; Rejected if the provider says the order is wrong, Transient if it may pass."""
    try:
        return operation(**values)
    except Fault as fault:
        if _is_client_fault(fault.code):
            raise Rejected(fault.message or "the provider rejected the order", where=_where(fault.detail)) from None
        raise Transient(f"the provider answered a fault: {fault.message}") from None
    except TransportError as error:
        if 400 <= error.status_code < 500 and error.status_code not in RETRIED_HTTP_STATUSES:
            raise Rejected(f"the provider answered HTTP {error.status_code}; is the endpoint right?") from None
        raise Transient(f"the provider answered HTTP {error.status_code} without a SOAP answer") from None
    except XMLSyntaxError:
        raise Transient("the provider's answer is not a SOAP envelope") from None
    except requests.RequestException as error:
        raise Transient(f"the provider is not reachable: {type(error).__name__}") from None


def _is_client_fault(code: str | None) -> bool:
    """True for soap:Client and its dotted subcodes (soap:Client.Validation), whatever the prefix."""
    return bool(code) and code.rpartition(":")[2].split(".")[0] == "Client"


def _where(detail: etree._Element | None) -> str | None:
    """The `where` of orders.xsd's fault element in a fault's detail, if the provider gave one."""
    return None if detail is None else detail.findtext(f"{{{NS}}}fault/{{{NS}}}where")
