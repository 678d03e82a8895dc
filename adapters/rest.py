"""The REST transport: documents and files to a partner's REST API (specs/provider-orders.md, "REST").

A document goes as its REST form (for an order: `POST {base}/orders`, `PUT {base}/orders/{id}`,
`DELETE {base}/orders/{id}` with a JSON reason); a file as `PUT {base}/files/{name}`; each with
the bearer token. A 2xx is the receipt. A 4xx says the item is wrong (Rejected, never retried),
except 401 and 403 (the hub's token: Misconfigured) and 408, 425 and 429; those, 5xx and network
errors are retried with backoff, then Transient.
"""

from __future__ import annotations

import datetime as dt
import json

import httpx

from adapters.retry import transient_retrying
from adapters.transport import Outgoing
from core.errors import Misconfigured, Rejected, Transient
from core.transfers import Receipt

RETRYABLE = {408, 425, 429}


class RestTransport:
    """A partner's REST API as a channel; one pooled HTTP client, every call with a timeout."""

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

    def send(self, item: Outgoing) -> Receipt:
        """The item's REST form, or its file; the receipt describes the body that was sent."""
        if item.rest is None:
            method, path, body, kind = "PUT", f"/files/{item.name}", item.body(), "application/octet-stream"
        else:
            method, path, kind = item.rest.method, item.rest.path, "application/json"
            body = json.dumps(item.rest.body, ensure_ascii=False, separators=(",", ":")).encode()
        response = self._retrying(self._send_once, method, path, body, kind)
        return Receipt.of(item.name, body, "rest", _received_at(response))

    def _send_once(self, method: str, path: str, body: bytes, kind: str) -> httpx.Response:
        try:
            response = self.http.request(method, path, content=body, headers={"Content-Type": kind})
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
