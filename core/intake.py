"""Turning received JSON into canonical envelopes, with a Rejected that names the bad field.

Every JSON body a partner sends is read by `parse_json`, which holds numbers to a length and
refuses nesting the parser cannot take, so no input reaches pydantic or the store unbounded.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from core.config import HubConfig
from core.errors import NotAllowed, Rejected
from schemas.bounded import error_message
from schemas.documents import DOCUMENTS, Sender, document_of, may_send
from schemas.envelope import Envelope

MAX_NUMBER_CHARS = 40
"""The longest number a JSON body may hold, in characters: far beyond any value a field accepts,
and far below Python's 4 300-digit limit on reading integers."""


def parse_json(raw: bytes | str, *, where: str = "body") -> Any:
    """The JSON value of `raw`, or Rejected: not JSON, not UTF-8, a number over `MAX_NUMBER_CHARS`,
    NaN or Infinity, or nesting too deep for the parser."""
    try:
        return json.loads(raw, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise Rejected("nested too deeply", where=where) from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Rejected(f"not valid JSON: {error}", where=where) from None


def _integer(text: str) -> int:
    _bounded(text)
    return int(text)


def _float(text: str) -> float:
    _bounded(text)
    return float(text)


def _bounded(text: str) -> None:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text)} characters, at most {MAX_NUMBER_CHARS}")


def _constant(text: str) -> None:
    raise ValueError(f"{text} is not a JSON number")


def envelope_from(data: Any, config: HubConfig, *, sender: Sender, where: str = "") -> Envelope:
    """Validate one envelope and its document: the type must be one `sender` may send (else
    NotAllowed) and the tenant one this hub serves."""
    prefix = f"{where}." if where else ""
    try:
        envelope = Envelope.model_validate(data)
    except ValidationError as error:
        raise _rejected(error, prefix) from None
    if envelope.type not in DOCUMENTS:
        raise Rejected(f"unknown document type {envelope.type!r}", where=f"{prefix}type")
    if not may_send(sender, envelope.type):
        raise NotAllowed(f"a {sender} may not send {envelope.type!r}", where=f"{prefix}type")
    try:
        document_of(envelope)
    except ValidationError as error:
        raise _rejected(error, f"{prefix}payload.") from None
    if config.tenant(envelope.tenant) is None:
        raise Rejected(f"unknown tenant {envelope.tenant}", where=f"{prefix}tenant")
    return envelope


def envelopes_from_json(
    raw: bytes, config: HubConfig, *, sender: Sender, max_batch: int
) -> list[tuple[Envelope, bytes]]:
    """Envelopes from a body holding one envelope or a JSON list of them, each with its own bytes."""
    data = parse_json(raw)
    if isinstance(data, dict):
        return [(envelope_from(data, config, sender=sender), raw)]
    if not isinstance(data, list) or not data:
        raise Rejected("expected an envelope object or a non-empty list of them", where="body")
    if len(data) > max_batch:
        raise Rejected(f"{len(data)} envelopes in one request, at most {max_batch}", where="body")
    return [
        (envelope_from(item, config, sender=sender, where=f"[{i}]"), json.dumps(item, ensure_ascii=False).encode())
        for i, item in enumerate(data)
    ]


def _rejected(error: ValidationError, prefix: str) -> Rejected:
    first = error.errors()[0]
    where = prefix + ".".join(str(part) for part in first["loc"])
    return Rejected(error_message(first), where=where.rstrip(".") or "body")
