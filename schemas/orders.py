"""Orders to LOV providers and their acknowledgements (contract: specs/provider-orders.md)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.bounded import Exact, Text, Version
from schemas.identity import OrganisationNumber, Personnummer

OrderKind = Literal["new", "amend", "cancel"]
CancelReason = Literal["moved", "deceased", "changed_provider", "ended", "other"]
Category = Literal["service", "omsorg"]
ORDER_ID = r"^[A-Za-z0-9-]{1,40}$"


class Address(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    street: Text = Field(min_length=1, max_length=100)
    postcode: str = Field(pattern=r"^\d{3} ?\d{2}$")
    city: Text = Field(min_length=1, max_length=60)


class Person(BaseModel):
    """The person the services are for. With protected identity the address never leaves the hub."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    personnummer: Personnummer
    name: Text = Field(min_length=1, max_length=120)
    address: Address | None = None
    phone: Text | None = Field(default=None, max_length=30)
    protected_identity: bool = False


class OrderedService(BaseModel):
    """One granted service (insats) on an order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{0,19}$", description="e.g. HT-OMS")
    category: Category
    hours_per_month: Exact = Field(ge=0, le=744, decimal_places=2)
    valid_from: dt.date
    valid_to: dt.date | None = None

    @model_validator(mode="after")
    def _period(self) -> OrderedService:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self


class Order(BaseModel):
    """An order as the case system issues it: new, amended (the whole new state) or cancelled."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: str = Field(pattern=ORDER_ID)
    version: Version
    kind: OrderKind
    case_ref: Text = Field(min_length=1, max_length=40)
    effective_date: dt.date
    person: Person
    provider_org: OrganisationNumber
    services: list[OrderedService] = Field(default_factory=list, max_length=50)
    double_staffing: bool = False
    instructions: Text | None = Field(default=None, max_length=2000)
    cancel_reason: CancelReason | None = None

    @model_validator(mode="after")
    def _kind_rules(self) -> Order:
        if self.kind == "cancel" and self.cancel_reason is None:
            raise ValueError("a cancellation needs its cancel_reason")
        if self.kind != "cancel" and self.cancel_reason is not None:
            raise ValueError(f"cancel_reason is only for cancellations, not {self.kind}")
        if self.kind != "cancel" and not self.services:
            raise ValueError("an order needs at least one service")
        return self


class OrderReceipt(BaseModel):
    """What a provider's channel answers when it has taken an order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: str
    version: Version
    received_at: AwareDatetime


class OrderAcknowledgement(BaseModel):
    """The provider's answer to an order: accepted, or rejected with a reason."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: str = Field(pattern=ORDER_ID)
    version: Version
    status: Literal["accepted", "rejected"]
    reason: Text | None = Field(default=None, max_length=1000)
    contact_person: Text | None = Field(default=None, max_length=120)
    provider_org: OrganisationNumber

    @model_validator(mode="after")
    def _reason(self) -> OrderAcknowledgement:
        if self.status == "rejected" and not self.reason:
            raise ValueError("a rejection needs its reason")
        return self


class OrderStatusChanged(BaseModel):
    """What the hub tells the case system about an order: delivered, acknowledged, failed, overdue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: str
    version: int
    status: Literal["delivered", "accepted", "rejected", "delivery_failed", "overdue", "superseded"]
    reason: str | None = None
    contact_person: str | None = None
    at: AwareDatetime
