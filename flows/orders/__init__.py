"""The LOV order flow: orders from the case system to each provider on its own channel, and the
providers' acknowledgements back (contract: specs/provider-orders.md).

- `orders.deliver` delivers each issued version once, in version order: a version at or below
  the one delivered is superseded and never sent; the call to the provider is made outside any
  transaction, while the order's row says which version is being sent.
- `acknowledge` takes a provider's answer from any channel; an unknown order, another version
  than the one delivered, or another provider is refused and nothing changes.
- `orders.overdue` (every minute) flags orders not acknowledged in time and reminds the provider,
  again once per reminder interval until it answers.
- `orders.sftp_acknowledgements` (every 30 s) picks up the ack files of SFTP providers.
- A person with protected identity: the provider gets the flag, never the address or phone.
"""
from __future__ import annotations

import datetime as dt
import logging
from functools import partial

from sqlalchemy import Connection, select, update

from adapters.channels import order_channel, sftp_order_channel
from adapters.order_xml import decode_acknowledgement
from core import audit, messages
from core.config import Caller, HubConfig, Partner, SftpChannel
from core.consumer import CASE_SYSTEM, PartnerCall, StepContext
from core.errors import Misconfigured, Rejected, Transient
from core.scheduler import every
from core.steps import step
from core.store import Store, insert_ignore, utcnow
from flows.orders.tables import orders
from schemas.envelope import Envelope
from schemas.orders import Order, OrderAcknowledgement, OrderReceipt, OrderStatusChanged

log = logging.getLogger(__name__)


def for_provider(order: Order) -> Order:
    """What a provider may see of an order: with protected identity, no address and no phone."""
    if not order.person.protected_identity:
        return order
    return order.model_copy(update={"person": order.person.model_copy(update={"address": None, "phone": None})})


def provider_of(config: HubConfig, tenant: str, order: Order) -> Partner:
    partner = config.provider(tenant, order.provider_org.digits)
    if partner is None:
        raise Rejected(f"no provider with organisation number {order.provider_org} in tenant {tenant}",
                       where="payload.provider_org")
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
    row = _locked_row(ctx.conn, ctx.envelope, order, partner)
    if order.version <= row.delivered_version or order.version < row.version:
        _status(ctx, order, "superseded", f"version {max(row.version, row.delivered_version)} is newer")
        return None
    if not _claim(ctx.conn, row, order.version):
        raise Transient(f"version {row.sending_version} of order {order.order_id} is being sent; "
                        f"version {order.version} follows")
    if order.kind == "cancel" and row.delivered_version == 0:
        _set(ctx.conn, tenant, order.order_id, state="withdrawn", sending_version=None, sending_since=None,
             reason="cancelled before the provider received it")
        _status(ctx, order, "superseded", "the provider never received the order: there is nothing to cancel")
        return None
    sent = order if row.delivered_version else order.model_copy(update={"kind": "new"})
    return PartnerCall(f"{tenant}/{partner.id}", partial(order_channel(partner).deliver, for_provider(sent)),
                       partial(_delivered, partner, order))


def _delivered(partner: Partner, order: Order, ctx: StepContext, outcome: OrderReceipt | Exception) -> None:
    tenant = ctx.envelope.tenant
    row = _locked(ctx.conn, tenant, order.order_id)
    if row.sending_version == order.version:
        _set(ctx.conn, tenant, order.order_id, sending_version=None, sending_since=None)
    if isinstance(outcome, Rejected):
        _set(ctx.conn, tenant, order.order_id, state="refused", reason=str(outcome))
        _status(ctx, order, "rejected", str(outcome))
        log.warning("provider %s refused order %s v%d", partner.id, order.order_id, order.version)
    elif isinstance(outcome, Exception):
        _set(ctx.conn, tenant, order.order_id, reason=f"not delivered yet: {outcome}")
    elif order.version > row.delivered_version:
        _set(ctx.conn, tenant, order.order_id, state="delivered", delivered_version=order.version, reason=None,
             delivered_at=outcome.received_at, acknowledged_at=None, reminded_at=None,
             ack_due_at=utcnow() + dt.timedelta(hours=partner.ack_deadline_hours))
        audit.record(ctx.conn, actor=f"step:{ctx.step.name}", action="order.transfer", tenant=tenant,
                     subject=f"order:{order.order_id}", detail=f"version {order.version} to {partner.id}")
        _status(ctx, order, "delivered")


@step("orders.remind", consumes=[], calls_partner=True)
def remind(ctx: StepContext) -> PartnerCall | None:
    """Deliver the current version again (providers take a repeat of a version as the same order);
    nothing when it is no longer current or was answered, or while another version is being sent."""
    order: Order = ctx.document
    partner = provider_of(ctx.config, ctx.envelope.tenant, order)
    row = _locked_row(ctx.conn, ctx.envelope, order, partner)
    if order.version != row.delivered_version or row.state not in ("delivered", "overdue"):
        return None
    if not _claim(ctx.conn, row, order.version):
        return None
    return PartnerCall(f"{ctx.envelope.tenant}/{partner.id}",
                       partial(order_channel(partner).deliver, for_provider(order)),
                       partial(_reminded, partner, order))


def _reminded(partner: Partner, order: Order, ctx: StepContext, outcome: OrderReceipt | Exception) -> None:
    tenant = ctx.envelope.tenant
    if _locked(ctx.conn, tenant, order.order_id).sending_version == order.version:
        _set(ctx.conn, tenant, order.order_id, sending_version=None, sending_since=None)
    if not isinstance(outcome, Exception):
        audit.record(ctx.conn, actor=f"step:{ctx.step.name}", action="order.transfer", tenant=tenant,
                     subject=f"order:{order.order_id}", detail=f"version {order.version} to {partner.id} again")


def acknowledge(store: Store, config: HubConfig, ack: OrderAcknowledgement, caller: Caller,
                raw: bytes | None) -> dt.datetime:
    """Take a provider's acknowledgement: stored, the order's state set, the case system told.

    Refused (Rejected, nothing changed) for an unknown order, a version other than the one
    delivered, or a provider other than the order's. A repeat of the same answer is harmless.
    """
    partner = config.partner(caller.tenant, caller.partner)
    with store.begin() as conn:
        row = conn.execute(select(orders).where(orders.c.tenant == caller.tenant,
                                                orders.c.order_id == ack.order_id).with_for_update()).first()
        refusal = _refusal(row, ack, partner)
        if refusal is not None:
            log.warning("acknowledgement from %s refused: %s", caller.partner, refusal)
            raise refusal
        if row.acknowledged_at is not None and row.state == ack.status:
            return row.acknowledged_at
        now = utcnow()
        envelope = Envelope(type="order.acknowledged", tenant=caller.tenant, source=caller.partner,
                            correlation_id=row.message_id, payload=ack.model_dump(mode="json"))
        messages.accept(conn, [(envelope, raw)])
        _set(conn, caller.tenant, ack.order_id, state=ack.status, reason=ack.reason,
             contact_person=ack.contact_person, acknowledged_at=now)
        status = OrderStatusChanged(order_id=ack.order_id, version=ack.version, status=ack.status,
                                    reason=ack.reason, contact_person=ack.contact_person, at=now)
        messages.send_many(conn, [(envelope.caused("order.status_changed", "casehub/orders",
                                                   status.model_dump(mode="json")), CASE_SYSTEM)])
        audit.record(conn, actor=f"partner:{caller.partner}", action="order.acknowledged", tenant=caller.tenant,
                     subject=f"order:{ack.order_id}", detail=f"version {ack.version} {ack.status}")
        return now


def _refusal(row, ack: OrderAcknowledgement, partner: Partner | None) -> Rejected | None:
    if row is None:
        return Rejected(f"unknown order {ack.order_id}", where="order_id")
    if partner is None or row.provider != partner.id or partner.organisation_number != ack.provider_org:
        return Rejected(f"order {ack.order_id} is not this provider's", where="provider_org")
    if ack.version != row.delivered_version:
        return Rejected(f"version {ack.version} is not the delivered version {row.delivered_version}",
                        where="version")
    return None


@every(60, name="orders.overdue")
def flag_overdue(hub) -> int:
    """Orders delivered and not acknowledged in time: overdue, the case system told, the provider
    reminded; then reminded again once per the provider's reminder interval until it answers."""
    now = utcnow()
    with hub.store.begin() as conn:
        due = conn.execute(select(orders).where(orders.c.state == "delivered", orders.c.ack_due_at < now)
                           .with_for_update(skip_locked=True)).all()
        for row in due:
            _set(conn, row.tenant, row.order_id, state="overdue", reminded_at=now)
            status = OrderStatusChanged(order_id=row.order_id, version=row.delivered_version, status="overdue",
                                        reason=f"not acknowledged by {row.ack_due_at:%Y-%m-%d %H:%M} UTC", at=now)
            issued = messages.load(conn, row.message_id)
            messages.send_many(conn, [(issued.caused("order.status_changed", "casehub/orders",
                                                     status.model_dump(mode="json")), CASE_SYSTEM)])
            messages.rerun(conn, row.message_id, "orders.remind", row.tenant)
        still = conn.execute(select(orders).where(orders.c.state == "overdue")
                             .with_for_update(skip_locked=True)).all()
        again = [row for row in still if (partner := hub.config.partner(row.tenant, row.provider)) is not None
                 and row.reminded_at + partner.reminder_interval <= now]
        for row in again:
            _set(conn, row.tenant, row.order_id, reminded_at=now)
            messages.rerun(conn, row.message_id, "orders.remind", row.tenant)
    if due or again:
        hub.relay.nudge()
        log.info("%d orders overdue, %d reminded again", len(due), len(again))
    return len(due) + len(again)


@every(30, name="orders.sftp_acknowledgements")
def pick_up_sftp_acknowledgements(hub) -> int:
    """Take the ack files SFTP providers dropped: archived when taken, failed with the reason when refused."""
    taken = 0
    for tenant in hub.config.tenants:
        for partner in tenant.partners:
            if partner.kind != "provider" or not isinstance(partner.channel, SftpChannel):
                continue
            caller = Caller(tenant.code, partner.id, partner.kind)

            def handle(data: bytes, _name: str) -> None:
                acknowledge(hub.store, hub.config, decode_acknowledgement(data), caller, data)

            try:
                archived, _failed = sftp_order_channel(partner).pick_up_acknowledgements(handle)
            except (Misconfigured, Rejected, Transient) as error:
                log.warning("acknowledgements of %s not picked up: %s", partner.id, error)
                continue
            taken += archived
    if taken:
        hub.relay.nudge()
    return taken


def resend(store: Store, tenant: str, order_id: str, *, by: str) -> str:
    """Deliver an order's latest version again: as new if it never got through, else as a reminder."""
    with store.begin() as conn:
        row = conn.execute(select(orders).where(orders.c.tenant == tenant, orders.c.order_id == order_id)).first()
        if row is None:
            raise LookupError(f"no order {order_id} in tenant {tenant}")
        step_name = "orders.remind" if row.delivered_version == row.version else "orders.deliver"
        messages.rerun(conn, row.message_id, step_name, tenant)
        audit.record(conn, actor=by, action="order.resend", tenant=tenant, subject=f"order:{order_id}",
                     detail=f"version {row.version} by {step_name}")
    return step_name


def _claim(conn: Connection, row, version: int) -> bool:
    """Mark `version` as being sent, unless another version is being sent (and its lease holds)."""
    now = utcnow()
    if row.sending_version not in (None, version) and row.sending_since > now - LEASE:
        return False
    _set(conn, row.tenant, row.order_id, sending_version=version, sending_since=now)
    return True


def _locked(conn: Connection, tenant: str, order_id: str):
    return conn.execute(select(orders).where(orders.c.tenant == tenant, orders.c.order_id == order_id)
                        .with_for_update()).one()


def _locked_row(conn: Connection, envelope: Envelope, order: Order, partner: Partner):
    """The order's row, created at its first version, locked until the step commits."""
    now = utcnow()
    insert_ignore(conn, orders, {
        "tenant": envelope.tenant, "order_id": order.order_id, "provider": partner.id, "case_ref": order.case_ref,
        "kind": order.kind, "version": order.version, "message_id": envelope.id, "delivered_version": 0,
        "state": "pending", "updated_at": now,
    })
    query = select(orders).where(orders.c.tenant == envelope.tenant, orders.c.order_id == order.order_id)
    row = conn.execute(query.with_for_update()).one()
    changed = {}
    if order.version > row.version:
        changed |= {"version": order.version, "kind": order.kind, "message_id": envelope.id, "provider": partner.id}
    if order.services and order.version > (row.state_version or 0):
        changed |= {"state_version": order.version, "state_message_id": envelope.id}
    if changed:
        _set(conn, envelope.tenant, order.order_id, **changed)
        row = conn.execute(query).one()
    return row


def _set(conn: Connection, tenant: str, order_id: str, **values) -> None:
    conn.execute(update(orders).where(orders.c.tenant == tenant, orders.c.order_id == order_id)
                 .values(updated_at=utcnow(), **values))


def _status(ctx: StepContext, order: Order, status: str, reason: str | None = None) -> None:
    change = OrderStatusChanged(order_id=order.order_id, version=order.version, status=status, reason=reason,
                                at=utcnow())
    ctx.emit("order.status_changed", change.model_dump(mode="json"))
