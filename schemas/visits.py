"""Visits reported by mobile-reporting vendors (contract: specs/mobile-reporting.md)."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.identity import OrganisationNumber, Personnummer

MAX_VISIT = dt.timedelta(hours=24)


class Visit(BaseModel):
    """One version of a home-care visit as a vendor reports it. The highest version wins."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # unknown fields are ignored, per the contract

    visit_id: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    provider_org: OrganisationNumber
    customer_pnr: Personnummer
    employee_id: str = Field(min_length=1, max_length=40)
    planned_start: AwareDatetime | None = None
    planned_end: AwareDatetime | None = None
    actual_start: AwareDatetime | None = None
    actual_end: AwareDatetime | None = None
    confirmation: Literal["nfc", "lock", "button", "manual"]
    tag_id: str | None = Field(default=None, max_length=64)
    manual_reason: str | None = Field(default=None, max_length=500)
    services: list[str] = Field(default_factory=list, max_length=20)
    double_staffing: bool = False
    declined: bool = False
    approved: bool = False
    edit_reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _rules(self) -> Visit:
        for start, end, what in ((self.planned_start, self.planned_end, "planned"),
                                 (self.actual_start, self.actual_end, "actual")):
            if start is not None and end is not None:
                if end < start:
                    raise ValueError(f"{what}_end is before {what}_start")
                if end - start > MAX_VISIT:
                    raise ValueError(f"the {what} visit is longer than 24 hours")
        if self.confirmation == "manual" and not self.manual_reason:
            raise ValueError("manual_reason is required when confirmation is manual")
        if self.version > 1 and not self.edit_reason:
            raise ValueError("edit_reason is required when version > 1")
        return self


class VisitRejection(BaseModel):
    """Why one visit of a batch was not taken."""

    visit_id: str | None
    reason: str
