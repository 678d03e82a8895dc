"""Visits reported by mobile-reporting vendors (contract: specs/mobile-reporting.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from schemas.bounded import CONTROL, Count, Text, Version
from schemas.identity import OrganisationNumber, Personnummer

MAX_VISIT = dt.timedelta(hours=24)
MAX_VISITS = 1000
"""The most visits one pushed body may carry."""

OptionalText = Annotated[Text | None, BeforeValidator(lambda value: None if value == "" else value)]
"""A text that may be absent; empty means absent, as in the contract's CSV file."""

ServiceCode = Annotated[str, Field(pattern=f"^[^,\\s{CONTROL}]+$", max_length=40)]
"""One word: the CSV file separates the codes with ','."""


class Visit(BaseModel):
    """One version of a home-care visit as a vendor reports it. The highest version wins."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # unknown fields are ignored, per the contract

    visit_id: Text = Field(min_length=1, max_length=64)
    version: Version
    provider_org: OrganisationNumber
    customer_pnr: Personnummer
    employee_id: Text = Field(min_length=1, max_length=40)
    planned_start: AwareDatetime | None = None
    planned_end: AwareDatetime | None = None
    actual_start: AwareDatetime | None = None
    actual_end: AwareDatetime | None = None
    confirmation: Literal["nfc", "lock", "button", "manual"]
    tag_id: OptionalText = Field(default=None, max_length=64)
    manual_reason: OptionalText = Field(default=None, max_length=500)
    services: list[ServiceCode] = Field(default_factory=list, max_length=20)
    double_staffing: bool = False
    declined: bool = False
    approved: bool = False
    edit_reason: OptionalText = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _rules(self) -> Visit:
        """The rules across fields; each error is located at the field to correct."""
        broken: list[tuple[str, str]] = []
        for start, end, what in (
            (self.planned_start, self.planned_end, "planned"),
            (self.actual_start, self.actual_end, "actual"),
        ):
            if start is not None and end is not None:
                if end < start:
                    broken.append((f"{what}_end", f"{what}_end is before {what}_start"))
                elif end - start > MAX_VISIT:
                    broken.append((f"{what}_end", f"the {what} visit is longer than 24 hours"))
        if self.confirmation == "manual" and not self.manual_reason:
            broken.append(("manual_reason", "manual_reason is required when confirmation is manual"))
        if self.version > 1 and not self.edit_reason:
            broken.append(("edit_reason", "edit_reason is required when version > 1"))
        if broken:
            raise ValidationError.from_exception_data(type(self).__name__, [_rule_error(self, *b) for b in broken])
        return self


def _rule_error(visit: Visit, field: str, message: str) -> InitErrorDetails:
    value: Any = getattr(visit, field)
    return InitErrorDetails(type=PydanticCustomError("visit_rule", message), loc=(field,), input=value)


class VisitRejection(BaseModel):
    """Why one visit of a batch was not taken."""

    visit_id: str | None
    reason: str


class VisitBatch(BaseModel):
    """A batch of visits as stored: which channel, how many taken and refused (the visits are rows)."""

    channel: Literal["push", "poll", "file"]
    visits: Count
    rejected: Count
