"""The push channel: vendors `POST /api/v1/visits` with `{"visits": [...]}` (at most 1 000)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from adapters.http_app import Refused, authenticate, read_body
from adapters.openapi import partner_operation
from adapters.visit_codecs import decode_visit_batch
from core.errors import Rejected
from core.runtime import Hub
from flows.visits.versions import in_transaction, store
from schemas.api import VISIT_EXAMPLE, VisitPush, VisitsAccepted


def routes(hub: Hub) -> list[APIRouter]:
    router = APIRouter()

    @router.post(
        "/api/v1/visits",
        status_code=202,
        tags=["visit vendors"],
        summary="Push visits, at most 1 000 at a time",
        operation_id="push_visits",
        **partner_operation(
            body=VisitPush,
            answers={202: VisitsAccepted},
            examples={"the contract's visit": {"visits": [VISIT_EXAMPLE]}},
        ),
    )
    async def push(request: Request) -> dict:
        caller = authenticate(hub, request, kinds={"visit_vendor"})
        raw = await read_body(request, hub.settings.max_body_bytes)
        try:
            accepted, rejected = decode_visit_batch(raw)
        except Rejected as error:
            raise Refused(422, error.reason, error.where) from None
        refused = await run_in_threadpool(_store, hub, caller, accepted, rejected, raw)
        return {
            "accepted": len(accepted) + len(rejected) - len(refused),
            "rejected": [{"visit_id": r.visit_id, "reason": r.reason} for r in refused],
        }

    return [router]


def _store(hub: Hub, caller, accepted, rejected, raw: bytes) -> list:
    return in_transaction(
        hub.store,
        lambda conn, one_by_one: store(
            conn,
            tenant=caller.tenant,
            vendor=caller.partner,
            accepted=accepted,
            rejected=rejected,
            raw=raw,
            channel="push",
            one_by_one=one_by_one,
        ),
    )
