"""The records of the retiring Logica Omsorg system, as the hub sends them on to the new case
system (contract: specs/legacy-logica-export.md). Personnummer in the 12-digit form; a date the
export wrote as `000000` is a missing value. A person with protected identity has no address here:
it never leaves the hub."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.bounded import Exact, Text
from schemas.identity import Personnummer

Area = Literal["ÄO", "LSS", "IFO", "SOP"]
"""Elderly care, LSS, individual and family care, social psychiatry."""

DecisionStatus = Literal["granted", "refused", "partly_granted"]

CaseNumber = Field(pattern=r"^[0-9A-Za-z-]{1,10}$")


class LegacyAddress(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    street: Text = Field(max_length=35)
    postcode: str = Field(pattern=r"^[0-9]{5}$|^$")
    city: Text = Field(max_length=20)


class LegacyPerson(BaseModel):
    """`legacy.person`: a person of PERS.DAT."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    personnummer: Personnummer
    last_name: Text = Field(min_length=1, max_length=30)
    first_names: Text = Field(max_length=30)
    address: LegacyAddress | None = Field(default=None, description="never for a person with protected identity")
    protected_identity: bool = False
    died: dt.date | None = None

    @model_validator(mode="after")
    def _no_address_when_protected(self) -> LegacyPerson:
        if self.protected_identity and self.address is not None:
            raise ValueError("address: a person with protected identity has none here (it never leaves the hub)")
        return self


class LegacyCase(BaseModel):
    """`legacy.case`: a case (ärende) of ARENDE.DAT."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_number: str = CaseNumber
    personnummer: Personnummer
    opened: dt.date
    closed: dt.date | None = None
    area: Area
    officer: Text = Field(max_length=6, description="the case officer's signature")


class LegacyDecision(BaseModel):
    """`legacy.decision`: a decision (beslut) of BESLUT.DAT."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision_id: str = Field(pattern=r"^[0-9A-Za-z-]{1,12}$")
    case_number: str = CaseNumber
    service_code: str = Field(pattern=r"^[A-ZÅÄÖ0-9][A-ZÅÄÖ0-9-]{0,7}$")
    decided: dt.date | None = None
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    hours_per_month: Exact = Field(ge=0, le=Decimal("999.99"), decimal_places=2)
    status: DecisionStatus


class LegacyJournalNote(BaseModel):
    """`legacy.journal_note`: a journal note of JOURNAL.DAT, its lines joined in continuation order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    note_id: str = Field(pattern=r"^[0-9A-Za-z-]{1,12}$")
    case_number: str = CaseNumber
    written: dt.datetime | None = Field(default=None, description="local time (Europe/Stockholm)")
    signature: Text = Field(max_length=6)
    text: Text = Field(max_length=61 * 999, description="the lines joined with a space")
    lines: int = Field(ge=1, le=999, description="the continuation records joined")
    gap: bool = Field(default=False, description="a continuation number was missing: the note is incomplete")
