"""Turning received canonical JSON into envelopes, with a Rejected that names the bad field."""
from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from core.config import HubConfig
from core.errors import Rejected
from schemas.documents import document_of
from schemas.envelope import Envelope


def envelope_from(data: Any, config: HubConfig, *, where: str = "") -> Envelope:
    """Validate one envelope and its document; the tenant must be one this hub serves."""
    prefix = f"{where}." if where else ""
    try:
        envelope = Envelope.model_validate(data)
    except ValidationError as error:
        raise _rejected(error, prefix) from None
    try:
        document_of(envelope)
    except ValidationError as error:
        raise _rejected(error, f"{prefix}payload.") from None
    except ValueError as error:
        raise Rejected(str(error).split(": ", 1)[-1], where=f"{prefix}type") from None
    if config.tenant(envelope.tenant) is None:
        raise Rejected(f"unknown tenant {envelope.tenant}", where=f"{prefix}tenant")
    return envelope


def envelopes_from_json(raw: bytes, config: HubConfig, *, max_batch: int) -> list[tuple[Envelope, bytes]]:
    """Envelopes from a body holding one envelope or a JSON list of them, each with its own bytes."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Rejected(f"not valid JSON: {error}", where="body") from None
    if isinstance(data, dict):
        return [(envelope_from(data, config), raw)]
    if not isinstance(data, list) or not data:
        raise Rejected("expected an envelope object or a non-empty list of them", where="body")
    if len(data) > max_batch:
        raise Rejected(f"{len(data)} envelopes in one request, at most {max_batch}", where="body")
    return [
        (envelope_from(item, config, where=f"[{i}]"), json.dumps(item, ensure_ascii=False).encode())
        for i, item in enumerate(data)
    ]


def _rejected(error: ValidationError, prefix: str) -> Rejected:
    first = error.errors()[0]
    where = prefix + ".".join(str(part) for part in first["loc"])
    return Rejected(reason_of(first), where=where.rstrip(".") or "body")


def reason_of(error: dict) -> str:
    """pydantic's message for one error, without its "Value error, " prefix."""
    return error["msg"].removeprefix("Value error, ")
