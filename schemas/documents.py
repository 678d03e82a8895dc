"""The registry of canonical documents: envelope type name to the model of its payload, and who
may send it. The hub's own types (`hub`) never come from outside (architecture rule 11)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from schemas.case import CaseEventRecorded, Receipt
from schemas.envelope import Envelope
from schemas.legacy import LegacyCase, LegacyDecision, LegacyJournalNote, LegacyPerson
from schemas.orders import Order, OrderAcknowledgement, OrderStatusChanged
from schemas.payroll import AssignmentDecided, PayrollApproved, StayReported
from schemas.reimbursement import BasisApproved
from schemas.visits import Visit, VisitBatch

PartnerKind = Literal["case_system", "provider", "visit_vendor", "economy", "payroll"]
Sender = Literal[PartnerKind, "hub"]
"""A kind of partner, or the hub itself."""


@dataclass(frozen=True)
class Document:
    model: type[BaseModel]
    senders: frozenset[Sender]
    """The kinds that may send an envelope of this type; the hub builds the rest from what a partner
    sent on its own channel (a vendor's visits become a `visit.batch`, a provider's answer an
    `order.acknowledged`)."""


def _document(model: type[BaseModel], *senders: Sender) -> Document:
    return Document(model, frozenset(senders))


DOCUMENTS: dict[str, Document] = {
    "case.event_recorded": _document(CaseEventRecorded, "case_system"),
    "order.issued": _document(Order, "case_system"),
    "order.acknowledged": _document(OrderAcknowledgement, "provider"),
    "visit.reported": _document(Visit, "visit_vendor"),
    "assignment.decided": _document(AssignmentDecided, "case_system"),
    "stay.reported": _document(StayReported, "case_system"),
    "hub.receipt": _document(Receipt, "hub"),
    "order.status_changed": _document(OrderStatusChanged, "hub"),
    "visit.batch": _document(VisitBatch, "hub"),
    "reimbursement.basis_approved": _document(BasisApproved, "hub"),
    "payroll.approved": _document(PayrollApproved, "hub"),
    "legacy.person": _document(LegacyPerson, "hub"),
    "legacy.case": _document(LegacyCase, "hub"),
    "legacy.decision": _document(LegacyDecision, "hub"),
    "legacy.journal_note": _document(LegacyJournalNote, "hub"),
}


def may_send(sender: Sender, type: str) -> bool:
    """True when a `sender` may send an envelope of `type` (False for an unknown type)."""
    document = DOCUMENTS.get(type)
    return document is not None and sender in document.senders


def document_of(envelope: Envelope) -> BaseModel:
    """The payload of `envelope` validated as its document; ValueError for an unknown type."""
    document = DOCUMENTS.get(envelope.type)
    if document is None:
        raise ValueError(f"type: unknown document type {envelope.type!r}")
    return document.model.model_validate(envelope.payload)


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of the Envelope and of every document, by name."""
    schemas = {"envelope": Envelope.model_json_schema()}
    for name, document in DOCUMENTS.items():
        schemas[name] = document.model.model_json_schema()
    return schemas
