"""A simulated case system: sends canonical case events to the hub and reads its feed."""
from __future__ import annotations

import datetime as dt
import random
import uuid

import httpx

from schemas.envelope import Envelope
from schemas.identity import generate_personnummer

STOCKHOLM = dt.timezone(dt.timedelta(hours=1))


class CaseSystem:
    """Speaks to the hub as a case system does: POST /api/v1/events, GET /api/v1/feed."""

    def __init__(self, base_url: str, token: str, tenant: str, *, seed: int = 1) -> None:
        self.tenant = tenant
        self.rng = random.Random(seed)
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        self.cursor = 0

    def event(self, *, person: str | None = None) -> dict:
        """One generated case event as JSON (generated people only, never real ones)."""
        person = person or generate_personnummer(self.rng).digits
        recorded = dt.datetime(2026, 3, 2, 8, 0, tzinfo=STOCKHOLM) + dt.timedelta(minutes=self.rng.randrange(40000))
        envelope = Envelope(
            id=str(uuid.UUID(int=self.rng.getrandbits(128))),
            type="case.event_recorded",
            tenant=self.tenant,
            source="case-system",
            payload={
                "case_ref": f"ÄO-{self.rng.randrange(10**6):06d}",
                "person": person,
                "kind": self.rng.choice(["note", "status", "decision"]),
                "recorded_at": recorded.isoformat(),
                "recorded_by": self.rng.choice(["HANDL1", "HANDL2", "HANDL3"]),
            },
        )
        return envelope.model_dump(mode="json")

    def post(self, events: list[dict] | dict) -> httpx.Response:
        return self.http.post("/api/v1/events", json=events)

    def read_feed(self, limit: int = 1000) -> list[dict]:
        """The events the hub sent since the last read; moves the cursor."""
        response = self.http.get("/api/v1/feed", params={"since": self.cursor, "limit": limit})
        response.raise_for_status()
        body = response.json()
        self.cursor = body["next_cursor"]
        return body["events"]

    def close(self) -> None:
        self.http.close()
