"""The registry of canonical documents: envelope type name to the model of its payload."""
from __future__ import annotations

from pydantic import BaseModel

from schemas.case import CaseEventRecorded, Receipt
from schemas.envelope import Envelope
from schemas.orders import Order, OrderAcknowledgement, OrderStatusChanged
from schemas.reimbursement import BasisApproved
from schemas.visits import Visit, VisitBatch

DOCUMENTS: dict[str, type[BaseModel]] = {
    "case.event_recorded": CaseEventRecorded,
    "hub.receipt": Receipt,
    "order.issued": Order,
    "order.acknowledged": OrderAcknowledgement,
    "order.status_changed": OrderStatusChanged,
    "visit.reported": Visit,
    "visit.batch": VisitBatch,
    "reimbursement.basis_approved": BasisApproved,
}


def document_of(envelope: Envelope) -> BaseModel:
    """The payload of `envelope` validated as its document; ValueError for an unknown type."""
    model = DOCUMENTS.get(envelope.type)
    if model is None:
        raise ValueError(f"type: unknown document type {envelope.type!r}")
    return model.model_validate(envelope.payload)


def json_schemas() -> dict[str, dict]:
    """The JSON Schema of the Envelope and of every document, by name."""
    schemas = {"envelope": Envelope.model_json_schema()}
    for name, model in DOCUMENTS.items():
        schemas[name] = model.model_json_schema()
    return schemas
