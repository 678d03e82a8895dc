"""The SOAP transport: documents and files to a partner's SOAP service, called with zeep.

A document goes as its SOAP form (for an order: SubmitOrder, AmendOrder or CancelOrder of
provider.wsdl), a file as the WSDL's `DeliverFile(name, content)`. A Client fault (the item itself
is wrong) and an HTTP 4xx are `Rejected` at once; a Server fault, HTTP 5xx, 408 or 429, an answer
that is not SOAP, a refused connection and a timeout are retried here a few times with a short
backoff, then `Transient`. The receipt describes the item's file form, not the envelope around it.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from pathlib import Path
from typing import Any

import requests
from lxml import etree
from zeep import Client, Settings
from zeep.cache import InMemoryCache, SqliteCache
from zeep.exceptions import Fault, TransportError, XMLSyntaxError
from zeep.transports import Transport

from adapters.order_xml import NS
from adapters.retry import transient_retrying
from adapters.transport import Outgoing, SoapCall
from core.errors import Misconfigured, Rejected, Transient
from core.store import utcnow
from core.transfers import Receipt

log = logging.getLogger(__name__)

PROVIDER_WSDL = Path(__file__).with_name("provider.wsdl")
PROVIDER_BINDING = "{urn:casehub:lov:provider:1}ProviderBinding"
ATTEMPTS = 4
"""Calls per item; between them the backoff waits 0.25 s, 0.5 s, 1 s (doubling, at most 2 s)."""

RETRIED_HTTP_STATUSES = frozenset({408, 429})
"""HTTP statuses below 500 that mean "not now" rather than "wrong"."""


class _NoEnvelopes(logging.Filter):
    """Drops zeep's DEBUG dumps of whole SOAP messages: they hold names, addresses and personnummer."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


logging.getLogger("zeep.transports").addFilter(_NoEnvelopes())


class SoapTransport:
    """A partner's SOAP service at `endpoint_url`, described by the project's `wsdl` (a provider's
    by default). `timeout` (seconds) bounds every call; `cache_path` is a SQLite file for zeep's
    cache of remote schemas (in memory without one)."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        timeout: float = 10,
        wsdl: Path = PROVIDER_WSDL,
        binding: str = PROVIDER_BINDING,
        cache_path: str | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self._service = _service(endpoint_url, timeout, str(wsdl), binding, cache_path)

    def send(self, item: Outgoing) -> Receipt:
        """Calls the item's operation, or DeliverFile for a file; the answer must echo what it names."""
        data = item.body()
        call = item.soap or SoapCall("DeliverFile", {"name": item.name, "content": data}, {"name": item.name})
        try:
            operation = getattr(self._service, call.operation)
        except AttributeError:
            raise Misconfigured(f"the partner's WSDL has no operation {call.operation}", where="channel") from None
        answer = transient_retrying(attempts=ATTEMPTS, backoff=0.25, max_backoff=2)(_call, operation, call.values)
        for name, value in call.echo.items():
            if getattr(answer, name, None) != value:
                raise Rejected(
                    f"the partner's receipt is not valid: {name} is {getattr(answer, name, None)!r}, not {value!r}",
                    where=call.operation,
                )
        return Receipt.of(item.name, data, "soap", _received_at(answer, call.operation))


@functools.cache
def _service(endpoint_url: str, timeout: float, wsdl: str, binding: str, cache_path: str | None) -> Any:
    """The zeep service proxy for one endpoint, built once per process."""
    transport = Transport(
        cache=SqliteCache(path=cache_path) if cache_path else InMemoryCache(),
        timeout=timeout,
        operation_timeout=timeout,
    )
    settings = Settings(strict=True, forbid_dtd=True, forbid_entities=True, xsd_ignore_sequence_order=True)
    return Client(wsdl, transport=transport, settings=settings).create_service(binding, endpoint_url)


def _received_at(answer: object, operation: str) -> dt.datetime:
    """The answer's `received_at` when it has one (it must then be a time with its zone), else now."""
    if not hasattr(answer, "received_at"):
        return utcnow()
    stamp = answer.received_at
    if isinstance(stamp, dt.datetime) and stamp.tzinfo is not None:
        return stamp
    raise Rejected(f"the partner's receipt is not valid: received_at is {stamp!r}", where=operation)


def _call(operation: Any, values: dict[str, Any]) -> Any:
    """One call; Rejected if the partner says the item is wrong, Transient if it may pass."""
    try:
        return operation(**values)
    except Fault as fault:
        if _is_client_fault(fault.code):
            raise Rejected(fault.message or "the partner refused it", where=_where(fault.detail)) from None
        raise Transient(f"the partner answered a fault: {fault.message}") from None
    except TransportError as error:
        if 400 <= error.status_code < 500 and error.status_code not in RETRIED_HTTP_STATUSES:
            raise Rejected(f"the partner answered HTTP {error.status_code}; is the endpoint right?") from None
        raise Transient(f"the partner answered HTTP {error.status_code} without a SOAP answer") from None
    except XMLSyntaxError:
        raise Transient("the partner's answer is not a SOAP envelope") from None
    except requests.RequestException as error:
        raise Transient(f"the partner is not reachable: {type(error).__name__}") from None


def _is_client_fault(code: str | None) -> bool:
    """True for soap:Client and its dotted subcodes (soap:Client.Validation), whatever the prefix."""
    return bool(code) and code.rpartition(":")[2].split(".")[0] == "Client"


def _where(detail: etree._Element | None) -> str | None:
    """The `where` of orders.xsd's fault element in a fault's detail, if the provider gave one."""
    return None if detail is None else detail.findtext(f"{{{NS}}}fault/{{{NS}}}where")
