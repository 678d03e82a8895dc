"""The Envelope: how every canonical document travels through the hub."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from schemas.bounded import Text, Version

KOMMUNKOD = re.compile(r"^\d{4}$")


def new_id() -> str:
    return str(uuid.uuid4())


class Envelope(BaseModel):
    """A canonical document with the facts needed to route, trace and deduplicate it.

    `id` is the sender's id and the idempotency key: the same id twice is the same message.
    `tenant` is the municipality's kommunkod. `payload` is the document itself; its model is
    found by `type` in `schemas.documents`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=new_id, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    type: str = Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_.]*$")
    tenant: str = Field(description="the municipality's kommunkod, four digits")
    correlation_id: Text | None = Field(default=None, max_length=64)
    causation_id: Text | None = Field(default=None, max_length=64)
    occurred_at: AwareDatetime = Field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    source: Text = Field(min_length=1, max_length=100)
    schema_version: Version = 1
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tenant")
    @classmethod
    def _kommunkod(cls, value: str) -> str:
        if not KOMMUNKOD.match(value):
            raise ValueError("tenant must be a kommunkod of four digits")
        return value

    def caused(self, type: str, source: str, payload: dict[str, Any]) -> Envelope:
        """A new envelope that this one caused: same tenant and correlation, causation set to this id."""
        return Envelope(
            type=type,
            tenant=self.tenant,
            correlation_id=self.correlation_id or self.id,
            causation_id=self.id,
            source=source,
            payload=payload,
        )
