"""Fees to foster families, contact families and contact persons, paid through payroll
(rules: specs/fees-and-payroll-rules.md, section B; file: specs/economy-and-payroll-files.md).

- `assignment.decided`: each version is the assignment's whole state, and replaces the previous
  version from its `valid_from` on.
- `stay.reported`: the days a contact family had the child in one period; a later version of the
  report for the same assignment and period replaces the earlier one.
- `PayLine`: one `lonetrans` of the PAXml file: the recipient and the pay, never the child.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from schemas.bounded import Exact, Text, Version
from schemas.identity import Personnummer
from schemas.money import Money, Period

AssignmentKind = Literal["foster_family", "contact_family", "contact_person"]
ComponentName = Literal["arvode", "omkostnad"]
COMPONENTS: tuple[ComponentName, ...] = ("arvode", "omkostnad")
Per = Literal["month", "day"]

AssignmentId = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$", description="e.g. A-1001")


class Recipient(BaseModel):
    """Who is paid: the foster family's, contact family's or contact person's payee."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    personnummer: Personnummer
    name: Text = Field(min_length=1, max_length=120)
    employee_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,19}$", description="anstid in payroll")


class Component(BaseModel):
    """An amount per month (prorated by calendar days) or per day of stay."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Money = Field(ge=0, le=1_000_000, decimal_places=2)
    per: Per


class AssignmentDecided(BaseModel):
    """One version of an assignment (uppdrag), as the case system decided it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    assignment_id: str = AssignmentId
    version: Version
    kind: AssignmentKind
    recipient: Recipient
    child: Personnummer = Field(description="the child's personnummer; it never leaves the hub towards payroll")
    cost_centre: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,19}$")
    valid_from: dt.date
    valid_to: dt.date | None = Field(default=None, description="inclusive; open-ended when absent")
    components: dict[ComponentName, Component] = Field(min_length=1)

    @field_validator("valid_to")
    @classmethod
    def _not_before_start(cls, valid_to: dt.date | None, info: ValidationInfo) -> dt.date | None:
        valid_from = info.data.get("valid_from")
        if valid_to is not None and valid_from is not None and valid_to < valid_from:
            raise ValueError(f"{valid_to} is before valid_from {valid_from}")
        return valid_to


class StayReported(BaseModel):
    """The dates in `period` on which the assignment's child stayed with the contact family."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    assignment_id: str = AssignmentId
    period: Period
    version: Version
    dates: list[dt.date] = Field(max_length=31)

    @field_validator("dates")
    @classmethod
    def _unique_and_inside_period(cls, dates: list[dt.date], info: ValidationInfo) -> list[dt.date]:
        if len(set(dates)) != len(dates):
            raise ValueError("a date appears twice")
        period = info.data.get("period")
        for date in dates:
            if period is not None and Period.of(date) != period:
                raise ValueError(f"{date} is outside the period {period}")
        return sorted(dates)


class PayLine(BaseModel):
    """One pay line (`lonetrans`) of the payroll file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    employee_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,19}$", description="anstid")
    personnummer: Personnummer = Field(description="the recipient's (persnr)")
    pay_code: str = Field(pattern=r"^[0-9]{1,6}$", description="lonart")
    text: Text = Field(min_length=1, max_length=100, description="benamning")
    date_from: dt.date
    date_to: dt.date
    quantity: Exact = Field(ge=-100_000, le=100_000, decimal_places=2, description="antal: days")
    unit_price: Money = Field(ge=0, le=1_000_000, decimal_places=2, description="apris")
    amount: Money = Field(ge=-100_000_000, le=100_000_000, decimal_places=2, description="belopp")
    cost_centre: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,19}$", description="resenhet dimid 1")


class PayrollHeader(BaseModel):
    """The PAXml header: the file's date and the paying organisation (the municipality)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    date: dt.date
    organisation_number: str = Field(pattern=r"^[0-9]{10}$", description="foretagorgnr")
    organisation_name: Text = Field(min_length=1, max_length=100, description="foretagnamn")


class PayrollApproved(BaseModel):
    """The hub's own event: a payroll run was approved and its file is to be delivered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: int = Field(ge=1)
    period: Period
