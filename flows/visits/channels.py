"""What the visit jobs share: the vendors on a kind of channel, and errors IT operations must act on."""

from __future__ import annotations

import logging

from sqlalchemy import select

from core import deadletters
from core.config import HubConfig, Partner
from core.scheduler import JobContext
from core.store.tables import dead_letters

log = logging.getLogger(__name__)


def vendors(config: HubConfig, kind: type | None = None, *, tenant: str | None = None) -> list[tuple[str, Partner]]:
    """(tenant, vendor) for every visit vendor (of `tenant`, if given), or every one configured with
    a channel of type `kind`."""
    return [
        (owner.code, partner)
        for owner in config.tenants
        if tenant is None or owner.code == tenant
        for partner in owner.partners
        if partner.kind == "visit_vendor" and (kind is None or isinstance(partner.channel, kind))
    ]


def configuration_error(ctx: JobContext, tenant: str, step: str, reason: str) -> None:
    """Keep an error IT operations must act on as one open dead letter, not one per round."""
    with ctx.store.begin() as conn:
        already = conn.scalar(
            select(dead_letters.c.id).where(
                dead_letters.c.step == step,
                dead_letters.c.tenant == tenant,
                dead_letters.c.reason == reason,
                dead_letters.c.status == "open",
            )
        )
        if already is None:
            deadletters.record(conn, step=step, kind="rejected", tenant=tenant, reason=reason)
    log.error("%s: %s", step, reason)
