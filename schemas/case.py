"""Documents exchanged with the case system that are not tied to one business flow."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.bounded import Text
from schemas.identity import Personnummer


class CaseEventRecorded(BaseModel):
    """Something recorded on a case in the case system (a note, a status change, a decision)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_ref: Text = Field(min_length=1, max_length=40)
    person: Personnummer
    kind: Literal["note", "status", "decision"]
    recorded_at: AwareDatetime
    recorded_by: Text = Field(min_length=1, max_length=40, description="the officer's signature")


class Receipt(BaseModel):
    """What the hub tells the case system once a step has handled one of its events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    of: str = Field(description="the id of the envelope handled")
    step: str
    handled_at: AwareDatetime
    outcome: Literal["done", "rejected"] = "done"
    reason: str | None = None
