"""Providers' acknowledgements of their orders, from any channel: REST and SOAP (flows/orders/routes.py)
and ack files in a provider's folder (`orders.sftp_acknowledgements`, every 30 s). An unknown order, another
version than the one delivered, or another provider is refused and nothing changes."""

from __future__ import annotations

import datetime as dt
import logging
from functools import partial
from typing import BinaryIO

from sqlalchemy import select

from adapters.channels import pick_up, source_for
from adapters.order_forms import ACK_PATTERN
from adapters.order_xml import decode_acknowledgement
from core import audit, messages, transfers
from core.config import Caller, HubConfig, Partner, Tenant
from core.consumer import CASE_SYSTEM
from core.errors import Misconfigured, Rejected, Transient
from core.scheduler import JobContext, scheduled
from core.store import Store, utcnow
from flows.orders import rows
from flows.orders.tables import orders
from schemas.envelope import Envelope
from schemas.orders import OrderAcknowledgement, OrderStatusChanged

log = logging.getLogger(__name__)


def acknowledge(
    store: Store, config: HubConfig, ack: OrderAcknowledgement, caller: Caller, raw: bytes | None
) -> dt.datetime:
    """Take a provider's acknowledgement: stored, the order's state set, the case system told.

    Refused (Rejected, nothing changed) for an unknown order, a version other than the one
    delivered, or a provider other than the order's. A repeat of the same answer is harmless.
    """
    partner = config.partner(caller.tenant, caller.partner)
    with store.begin() as conn:
        row = conn.execute(
            select(orders).where(orders.c.tenant == caller.tenant, orders.c.order_id == ack.order_id).with_for_update()
        ).first()
        refusal = _refusal(row, ack, partner)
        if refusal is not None:
            log.warning("acknowledgement from %s refused: %s", caller.partner, refusal)
            raise refusal
        if row.acknowledged_at is not None and row.state == ack.status:
            return row.acknowledged_at
        now = utcnow()
        envelope = Envelope(
            type="order.acknowledged",
            tenant=caller.tenant,
            source=caller.partner,
            correlation_id=row.message_id,
            payload=ack.model_dump(mode="json"),
        )
        messages.accept(conn, [(envelope, raw)])
        rows.set_values(
            conn,
            caller.tenant,
            ack.order_id,
            state=ack.status,
            reason=ack.reason,
            contact_person=ack.contact_person,
            acknowledged_at=now,
        )
        status = OrderStatusChanged(
            order_id=ack.order_id,
            version=ack.version,
            status=ack.status,
            reason=ack.reason,
            contact_person=ack.contact_person,
            at=now,
        )
        messages.send_many(
            conn,
            [(envelope.caused("order.status_changed", "casehub/orders", status.model_dump(mode="json")), CASE_SYSTEM)],
        )
        audit.record(
            conn,
            actor=f"partner:{caller.partner}",
            action="order.acknowledged",
            tenant=caller.tenant,
            subject=f"order:{ack.order_id}",
            detail=f"version {ack.version} {ack.status}",
        )
        return now


def _refusal(row, ack: OrderAcknowledgement, partner: Partner | None) -> Rejected | None:
    if row is None:
        return Rejected(f"unknown order {ack.order_id}", where="order_id")
    if partner is None or row.provider != partner.id or partner.organisation_number != ack.provider_org:
        return Rejected(f"order {ack.order_id} is not this provider's", where="provider_org")
    if ack.version != row.delivered_version:
        return Rejected(f"version {ack.version} is not the delivered version {row.delivered_version}", where="version")
    return None


@scheduled("orders.sftp_acknowledgements")
def pick_up_sftp_acknowledgements(ctx: JobContext, tenant: Tenant) -> int:
    """Take the ack files the tenant's providers dropped in their folders: archived when taken,
    failed with the reason when refused."""
    taken = 0
    for partner in tenant.partners:
        if partner.kind != "provider":
            continue
        caller = Caller(tenant.code, partner.id, partner.kind)

        def handle(_name: str, file: BinaryIO) -> None:
            data = file.read()
            acknowledge(ctx.store, ctx.config, decode_acknowledgement(data), caller, data)

        try:
            source = source_for(partner)
            if source is not None:
                settled = partial(transfers.picked_up, ctx.store, tenant=tenant.code, partner=partner.id)
                taken += len(pick_up(source, ACK_PATTERN, handle, done_suffix=None, settled=settled).archived)
        except (Misconfigured, Rejected, Transient) as error:
            log.warning("acknowledgements of %s not picked up: %s", partner.id, error)
    if taken:
        ctx.nudge()
    return taken
