"""A simulated case system: sends canonical case events to the hub and reads its feed."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import httpx

from schemas.envelope import Envelope
from schemas.identity import generate_personnummer

STOCKHOLM = dt.timezone(dt.timedelta(hours=1))
FIRST_NAMES = ["Testa", "Prova", "Exempel", "Fiktiv", "Påhittad"]
CHILDREN_BORN = dt.date(2010, 1, 1)
LAST_NAMES = ["Testsson", "Provberg", "Exempelström", "Fiktivdotter"]


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

    def order(
        self,
        provider_org: str,
        *,
        order_id: str | None = None,
        version: int = 1,
        kind: str = "new",
        protected: bool = False,
        instructions: str | None = None,
        person: str | None = None,
        double_staffing: bool = False,
        service_hours: str | None = None,
    ) -> dict:
        """An `order.issued` envelope as JSON, for a generated person (never a real one)."""
        order_id = order_id or f"ORD-{self.rng.randrange(10**8):08d}"
        payload = {
            "order_id": order_id,
            "version": version,
            "kind": kind,
            "case_ref": f"ÄO-{self.rng.randrange(10**6):06d}",
            "effective_date": "2026-03-01",
            "person": {
                "personnummer": person or generate_personnummer(self.rng).digits,
                "name": f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}",
                "address": {"street": f"Testgatan {self.rng.randrange(1, 99)}", "postcode": "178 30", "city": "Ekerö"},
                "phone": f"070-{self.rng.randrange(10**7):07d}",
                "protected_identity": protected,
            },
            "provider_org": provider_org,
            "services": [
                {"code": "HT-OMS", "category": "omsorg", "hours_per_month": "20.00", "valid_from": "2026-03-01"},
                {
                    "code": "HT-SERV",
                    "category": "service",
                    "hours_per_month": service_hours or str(4 + version),
                    "valid_from": "2026-03-01",
                },
            ]
            if kind != "cancel"
            else [],
            "double_staffing": double_staffing,
            "instructions": instructions,
            "cancel_reason": "ended" if kind == "cancel" else None,
        }
        envelope = Envelope(
            id=str(uuid.UUID(int=self.rng.getrandbits(128))),
            type="order.issued",
            tenant=self.tenant,
            source="case-system",
            payload=payload,
        )
        return envelope.model_dump(mode="json")

    def assignment(
        self,
        assignment_id: str,
        *,
        kind: str = "foster_family",
        version: int = 1,
        valid_from: str = "2026-03-01",
        valid_to: str | None = None,
        arvode: str = "9800.00",
        omkostnad: str = "5420.00",
        per: str | None = None,
        recipient: str | None = None,
        child: str | None = None,
    ) -> dict:
        """An `assignment.decided` envelope as JSON: a generated recipient and child; per day for a
        contact family, per month otherwise, unless `per` says."""
        rng = random.Random(assignment_id)  # the same recipient and child in every version
        per = per or ("day" if kind == "contact_family" else "month")
        payload = {
            "assignment_id": assignment_id,
            "version": version,
            "kind": kind,
            "recipient": {
                "personnummer": recipient or generate_personnummer(rng).digits,
                "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                "employee_id": f"F{rng.randrange(10**6):06d}",
            },
            "child": child
            or generate_personnummer(rng, born_from=dt.date(2010, 1, 1), born_to=dt.date(2020, 12, 31)).digits,
            "cost_centre": "IFO-FH" if kind == "foster_family" else "IFO-KF",
            "valid_from": valid_from,
            "valid_to": valid_to,
            "components": {"arvode": {"amount": arvode, "per": per}, "omkostnad": {"amount": omkostnad, "per": per}},
        }
        return self._envelope("assignment.decided", payload)

    def stays(self, assignment_id: str, period: str, days: list[int], *, version: int = 1) -> dict:
        """A `stay.reported` envelope as JSON: the days of `period` (YYYY-MM) with a stay."""
        dates = [f"{period}-{day:02d}" for day in days]
        return self._envelope(
            "stay.reported", {"assignment_id": assignment_id, "period": period, "version": version, "dates": dates}
        )

    def _envelope(self, type: str, payload: dict) -> dict:
        envelope = Envelope(
            id=str(uuid.UUID(int=self.rng.getrandbits(128))),
            type=type,
            tenant=self.tenant,
            source="case-system",
            payload=payload,
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
