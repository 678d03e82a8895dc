"""Orders to providers: each issued version delivered once, in version order, on the provider's
own channel (contract: specs/provider-orders.md, "Behaviour").

- `orders.deliver`: a version at or below the one delivered is superseded and never sent; the
  first version a provider receives goes as a new order; a cancellation of an order it never
  received is not sent. The call is made outside any transaction (core.consumer.PartnerCall),
  while the order's row says which version is being sent.
- `orders.remind`: the current version delivered again, for an order not acknowledged in time.
- `resend`: IT operations sends an order's latest version again.
- A person with protected identity: the provider gets the flag, never the address or phone.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from functools import partial

from sqlalchemy import Connection, select

from adapters import order_forms
from adapters.channels import channel_for, send_all
from core import audit, messages, transfers
from core.config import HubConfig, Partner
from core.consumer import PartnerCall, StepContext
from core.errors import Rejected, Transient
from core.steps import step
from core.store import Store, utcnow
from core.transfers import Receipt
from flows.orders import rows
from flows.orders.configuration import order_settings
from flows.orders.tables import orders
from schemas.orders import Order, OrderStatusChanged

log = logging.getLogger(__name__)


def for_provider(order: Order) -> Order:
    """What a provider may see of an order: with protected identity, no address and no phone."""
    if not order.person.protected_identity:
        return order
    return order.model_copy(update={"person": order.person.model_copy(update={"address": None, "phone": None})})


def provider_of(config: HubConfig, tenant: str, order: Order) -> Partner:
    partner = config.provider(tenant, order.provider_org.digits)
    if partner is None:
        raise Rejected(
            f"no provider with organisation number {order.provider_org} in tenant {tenant}",
            where="payload.provider_org",
        )
    return partner


LEASE = dt.timedelta(minutes=10)
"""How long a version being sent keeps the order's other versions waiting, should its worker die in
the call. The same version may always be sent again: a provider takes a repeat as the same order."""


@step("orders.deliver", consumes=["order.issued"], calls_partner=True)
def deliver(ctx: StepContext) -> PartnerCall | None:
    """Send an issued version, unless a newer one is issued or delivered (then it is superseded).

    The first version a provider receives goes as a new order, whatever its number; a cancellation
    of an order it never received is not sent. While another version of the order is being sent,
    this one waits (Transient: the bus retries it), so that versions arrive in order.
    """
    order: Order = ctx.document
    tenant = ctx.envelope.tenant
    partner = provider_of(ctx.config, tenant, order)
    row = rows.locked_for(ctx.conn, ctx.envelope, order, partner)
    if order.version <= row.delivered_version or order.version < row.version:
        _status(ctx, order, "superseded", f"version {max(row.version, row.delivered_version)} is newer")
        return None
    if not _claim(ctx.conn, row, order.version):
        raise Transient(
            f"version {row.sending_version} of order {order.order_id} is being sent; version {order.version} follows"
        )
    if order.kind == "cancel" and row.delivered_version == 0:
        rows.set_values(
            ctx.conn,
            tenant,
            order.order_id,
            state="withdrawn",
            sending_version=None,
            sending_since=None,
            reason="cancelled before the provider received it",
        )
        _status(ctx, order, "superseded", "the provider never received the order: there is nothing to cancel")
        return None
    sent = order if row.delivered_version else order.model_copy(update={"kind": "new"})
    return _sending(ctx, partner, sent, f"version {order.version} to {partner.id}", partial(_delivered, partner, order))


def _sending(
    ctx: StepContext,
    partner: Partner,
    order: Order,
    detail: str,
    settle: Callable[[StepContext, list[Receipt] | Exception], None],
) -> PartnerCall:
    """The call that sends what a provider may see of `order`, recorded as a transfer when taken."""
    item = order_forms.outgoing(for_provider(order))
    return transfers.call(
        ctx,
        partner,
        partial(send_all, channel_for(partner), [item]),
        action="order.transfer",
        subject=f"order:{order.order_id}",
        detail=detail,
        settle=settle,
    )


def _delivered(partner: Partner, order: Order, ctx: StepContext, outcome: list[Receipt] | Exception) -> None:
    tenant = ctx.envelope.tenant
    row = _release(ctx.conn, tenant, order)
    if isinstance(outcome, Rejected):
        rows.set_values(ctx.conn, tenant, order.order_id, state="refused", reason=str(outcome))
        _status(ctx, order, "rejected", str(outcome))
        log.warning("provider %s refused order %s v%d", partner.id, order.order_id, order.version)
    elif isinstance(outcome, Exception):
        rows.set_values(ctx.conn, tenant, order.order_id, reason=f"not delivered yet: {outcome}")
    elif order.version > row.delivered_version:
        rows.set_values(
            ctx.conn,
            tenant,
            order.order_id,
            state="delivered",
            delivered_version=order.version,
            reason=None,
            delivered_at=outcome[0].received_at,
            acknowledged_at=None,
            reminded_at=None,
            ack_due_at=utcnow() + order_settings(partner).ack_deadline,
        )
        _status(ctx, order, "delivered")


@step("orders.remind", consumes=[], calls_partner=True)
def remind(ctx: StepContext) -> PartnerCall | None:
    """Deliver the current version again (providers take a repeat of a version as the same order);
    nothing when it is no longer current or was answered, or while another version is being sent."""
    order: Order = ctx.document
    partner = provider_of(ctx.config, ctx.envelope.tenant, order)
    row = rows.locked_for(ctx.conn, ctx.envelope, order, partner)
    if order.version != row.delivered_version or row.state not in ("delivered", "overdue"):
        return None
    if not _claim(ctx.conn, row, order.version):
        return None
    return _sending(ctx, partner, order, f"version {order.version} to {partner.id} again", partial(_released, order))


def _released(order: Order, ctx: StepContext, _outcome: list[Receipt] | Exception) -> None:
    _release(ctx.conn, ctx.envelope.tenant, order)


def resend(store: Store, tenant: str, order_id: str, *, by: str) -> str:
    """Deliver an order's latest version again: as new if it never got through, else as a reminder."""
    with store.begin() as conn:
        row = conn.execute(select(orders).where(orders.c.tenant == tenant, orders.c.order_id == order_id)).first()
        if row is None:
            raise LookupError(f"no order {order_id} in tenant {tenant}")
        step_name = "orders.remind" if row.delivered_version == row.version else "orders.deliver"
        messages.rerun(conn, row.message_id, step_name, tenant)
        audit.record(
            conn,
            actor=by,
            action="order.resend",
            tenant=tenant,
            subject=f"order:{order_id}",
            detail=f"version {row.version} by {step_name}",
        )
    return step_name


def _claim(conn: Connection, row, version: int) -> bool:
    """Mark `version` as being sent, unless another version is being sent (and its lease holds)."""
    now = utcnow()
    if row.sending_version not in (None, version) and row.sending_since > now - LEASE:
        return False
    rows.set_values(conn, row.tenant, row.order_id, sending_version=version, sending_since=now)
    return True


def _release(conn: Connection, tenant: str, order: Order):
    """The order's row, locked, no longer saying `order`'s version is being sent (if it still did)."""
    row = rows.locked(conn, tenant, order.order_id)
    if row.sending_version == order.version:
        rows.set_values(conn, tenant, order.order_id, sending_version=None, sending_since=None)
    return row


def _status(ctx: StepContext, order: Order, status: str, reason: str | None = None) -> None:
    change = OrderStatusChanged(
        order_id=order.order_id, version=order.version, status=status, reason=reason, at=utcnow()
    )
    ctx.emit("order.status_changed", change.model_dump(mode="json"))
