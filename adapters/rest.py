"""Orders to a provider's REST API (specs/provider-orders.md, "REST").

`POST {base}/orders` a new order, `PUT {base}/orders/{id}` an amendment, `DELETE {base}/orders/{id}`
with a JSON reason a cancellation, each with the bearer token. A 2xx is the receipt. A 4xx says the
order is wrong (Rejected, never retried), except 408 and 429; those, 5xx and network errors are
retried with backoff, then Transient.
"""

from __future__ import annotations

import datetime as dt

import httpx

from adapters.retry import transient_retrying
from core.errors import Misconfigured, Rejected, Transient
from schemas.orders import Order, OrderReceipt

RETRYABLE = {408, 425, 429}


class RestOrderChannel:
    """Delivers orders to one provider's REST API; one pooled HTTP client, every call with a timeout."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        attempts: int = 4,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {token}"},
        )
        self._retrying = transient_retrying(attempts=attempts, backoff=backoff, max_backoff=10)

    def deliver(self, order: Order) -> OrderReceipt:
        body = order.model_dump(mode="json")
        if order.kind == "new":
            response = self._send("POST", "/orders", body)
        elif order.kind == "amend":
            response = self._send("PUT", f"/orders/{order.order_id}", body)
        else:
            response = self._send(
                "DELETE", f"/orders/{order.order_id}", {"reason": order.cancel_reason, "version": order.version}
            )
        return OrderReceipt(order_id=order.order_id, version=order.version, received_at=_received_at(response))

    def send_file(self, name: str, data: bytes) -> None:
        """`PUT {base}/files/{name}`: a file for the provider (the reimbursement basis); a resend replaces."""
        self._send("PUT", f"/files/{name}", data)

    def _send(self, method: str, path: str, body: dict | bytes) -> httpx.Response:
        return self._retrying(self._send_once, method, path, body)

    def _send_once(self, method: str, path: str, body: dict | bytes) -> httpx.Response:
        try:
            if isinstance(body, bytes):
                response = self.http.request(method, path, content=body)
            else:
                response = self.http.request(method, path, json=body)
        except httpx.HTTPError as error:
            raise Transient(f"{method} {path}: {error.__class__.__name__}: {error}") from error
        if response.is_success:
            return response
        if response.status_code >= 500 or response.status_code in RETRYABLE:
            raise Transient(f"{method} {path}: HTTP {response.status_code}")
        if response.status_code in (401, 403):
            raise Misconfigured(
                f"HTTP {response.status_code}: the partner refuses the hub's token", where=f"{method} {path}"
            )
        raise Rejected(f"HTTP {response.status_code}: {_reason(response)}", where=f"{method} {path}")

    def close(self) -> None:
        self.http.close()


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("reason") or body.get("error") or body.get("detail") or body)[:500]
    return str(body)[:500]


def _received_at(response: httpx.Response) -> dt.datetime:
    try:
        stamp = response.json().get("received_at")
        if stamp:
            parsed = dt.datetime.fromisoformat(stamp)
            if parsed.tzinfo is not None:
                return parsed
    except (ValueError, AttributeError):
        pass
    return dt.datetime.now(dt.timezone.utc)


class VisitVendorApi:
    """A mobile-reporting vendor's API that the hub polls: `GET {base}/api/v1/visits?since=&limit=`.

    429 and 5xx are Transient (the next poll tries again); 401 and 403 are Rejected: a
    configuration error for IT operations.
    """

    def __init__(
        self, base_url: str, token: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {token}"},
        )

    def page(self, since: str, limit: int) -> bytes:
        try:
            response = self.http.get("/api/v1/visits", params={"since": since, "limit": limit})
        except httpx.HTTPError as error:
            raise Transient(f"GET visits: {error.__class__.__name__}: {error}") from error
        if response.status_code in (401, 403):
            raise Misconfigured(
                f"HTTP {response.status_code}: the vendor refuses the hub's token", where="GET /api/v1/visits"
            )
        if response.status_code >= 500 or response.status_code in RETRYABLE:
            raise Transient(f"GET visits: HTTP {response.status_code}")
        if not response.is_success:
            raise Rejected(f"HTTP {response.status_code}: {_reason(response)}", where="GET /api/v1/visits")
        return response.content

    def close(self) -> None:
        self.http.close()
