"""The partner API over HTTP: what partners send the hub and what it answers.

The handlers read and store a request's bytes before anything else (architecture rule 1), so FastAPI
never sees these models; they describe the API in its OpenAPI document (adapters.openapi) and in
`casehub schemas export`. They are made of the documents that validate the bytes, so the
description cannot drift from the code.
"""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, RootModel, create_model

from schemas.documents import DOCUMENTS
from schemas.envelope import Envelope
from schemas.orders import OrderAcknowledgement
from schemas.visits import MAX_VISITS, Visit, VisitRejection


def _typed(type_name: str) -> Any:
    """The Envelope of one document type, its payload that document."""
    model = DOCUMENTS[type_name].model
    kind: Any = Literal[type_name]  # types made at run time: Any to mypy
    return create_model(
        f"{model.__name__}Envelope",
        __base__=Envelope,
        __doc__=f"An envelope of type `{type_name}`: {model.__doc__ or model.__name__}",
        type=(kind, ...),
        payload=(model, ...),
    )


def _case_system_events() -> type[BaseModel]:
    event: Any = Annotated[
        functools.reduce(
            operator.or_, [_typed(name) for name, doc in DOCUMENTS.items() if "case_system" in doc.senders]
        ),
        Field(discriminator="type"),
    ]
    one_or_more: Any = event | Annotated[list[event], Field(min_length=1)]
    return create_model(
        "CaseSystemEvents",
        __base__=RootModel,
        __doc__="""`POST /api/v1/events`: one envelope, or a non-empty list of them (at most the hub's
    `CASEHUB_MAX_BATCH`, 1 000 by default), each of a type the case system may send. An envelope's
    `id` is its idempotency key.""",
        root=(one_or_more, ...),
    )


CaseSystemEvents = _case_system_events()


class VisitPush(BaseModel):
    """`POST /api/v1/visits`: a vendor's visits. Each is judged on its own: a wrong one is
    rejected with its reason, the rest are taken."""

    model_config = ConfigDict(extra="ignore")

    visits: list[Visit] = Field(max_length=MAX_VISITS)


REQUEST_BODIES: dict[str, type[BaseModel]] = {
    "request.events": CaseSystemEvents,
    "request.visits": VisitPush,
    "request.acknowledgement": OrderAcknowledgement,
}
"""The bodies partners send, by the name `casehub schemas export` writes them under."""


def body_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each request body, by name."""
    return {name: model.model_json_schema() for name, model in REQUEST_BODIES.items()}


# --- the answers ---------------------------------------------------------------------------------


class Problem(BaseModel):
    """Why a request was refused, and where: the field, the item (`[3].payload.order_id`) or `body`."""

    error: str
    where: str | None = None


class ServerProblem(BaseModel):
    """Something the hub did not expect: its log holds the details under the correlation id."""

    error: str
    correlation_id: str


class EventsAccepted(BaseModel):
    """The envelopes are stored: the ids of those `accepted` now, and of the `duplicates` the hub
    already had with the same content (sending again is harmless)."""

    accepted: list[str]
    duplicates: list[str]


class EventConflict(BaseModel):
    """An envelope whose id the hub holds with other content: it was not stored."""

    id: str
    where: str
    error: str


class EventsConflicting(EventsAccepted):
    """Some envelopes conflict with stored ones; the others are stored."""

    error: str
    conflicts: list[EventConflict]


class VisitsAccepted(BaseModel):
    """The visits taken are stored; each one refused is named with its reason."""

    accepted: int
    rejected: list[VisitRejection]


class AcknowledgementReceived(BaseModel):
    """The acknowledgement is stored, at `received_at`."""

    order_id: str
    received_at: AwareDatetime


class Feed(BaseModel):
    """The case system's events after the cursor `since`; ask again with `since=next_cursor`."""

    events: list[Envelope]
    next_cursor: int


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """Whether the store and the broker answer; 503 when either does not."""

    store: Literal["ok", "unreachable"]
    broker: Literal["ok", "unreachable"]
    status: Literal["ready", "not ready"]


ANSWERS: tuple[type[BaseModel], ...] = (
    Problem,
    ServerProblem,
    EventsAccepted,
    EventsConflicting,
    VisitsAccepted,
    AcknowledgementReceived,
    Feed,
    Health,
    Readiness,
)


# --- examples, from the contracts (specs/mobile-reporting.md, specs/provider-orders.md) -----------

VISIT_EXAMPLE: dict[str, Any] = {
    "visit_id": "V-2026-000123",
    "version": 3,
    "provider_org": "5560360793",
    "customer_pnr": "194107086995",
    "employee_id": "E1042",
    "planned_start": "2026-03-02T08:00:00+01:00",
    "planned_end": "2026-03-02T08:30:00+01:00",
    "actual_start": "2026-03-02T08:04:12+01:00",
    "actual_end": "2026-03-02T08:31:40+01:00",
    "confirmation": "nfc",
    "tag_id": "04:A2:2B:9A:11:80",
    "manual_reason": None,
    "services": ["HT-OMS", "HT-SERV"],
    "double_staffing": False,
    "declined": False,
    "approved": True,
    "edit_reason": "the end time corrected by the provider",
}
"""The contract's visit (its third version, so with the reason for the edit)."""

ORDER_EXAMPLE: dict[str, Any] = {
    "id": "cs-2026-000042",
    "type": "order.issued",
    "tenant": "0125",
    "occurred_at": "2026-03-01T09:15:00+01:00",
    "source": "case-system",
    "payload": {
        "order_id": "ORD-2026-0042",
        "version": 1,
        "kind": "new",
        "case_ref": "A-2026-0117",
        "effective_date": "2026-03-02",
        "person": {
            "personnummer": "194107086995",
            "name": "Testperson Exempel",
            "address": {"street": "Exempelvägen 1", "postcode": "178 30", "city": "Ekerö"},
            "protected_identity": False,
        },
        "provider_org": "5560360793",
        "services": [
            {"code": "HT-OMS", "category": "omsorg", "hours_per_month": "12.50", "valid_from": "2026-03-02"},
        ],
    },
}
"""An order the case system issues to a provider, as an envelope."""

ACKNOWLEDGEMENT_EXAMPLE: dict[str, Any] = {
    "order_id": "ORD-2026-0042",
    "version": 1,
    "status": "accepted",
    "reason": None,
    "contact_person": "Anna Samordnare",
    "provider_org": "5560360793",
}
"""A provider's acceptance of that order."""
