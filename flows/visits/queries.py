"""What IT operations reads of visit intake: per vendor, what is stored for a period and how the
channels are doing. Counts and times only: no personal data, so nothing to audit."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import func, select

from core.config import HubConfig, RestChannel, SftpChannel
from core.store import Store
from core.store.tables import checkpoints, dead_letters, messages
from flows.visits.tables import VISIT_START, visits
from schemas.money import Period


@dataclass(frozen=True)
class VendorStatus:
    vendor: str
    channels: list[str]
    """push (it has a token to call the hub), poll (a REST channel) and file (an SFTP channel)."""
    versions: int
    """Visit versions stored that start in the period."""
    visits: int
    last_batch_at: object
    """When the hub last stored a batch from the vendor, on any channel."""
    last_poll_at: object
    """When the poll cursor last moved (poll only)."""
    rejected: int
    """Visits rejected in the batches stored since the period began."""
    open_dead_letters: int


def channels_of(partner) -> list[str]:
    return (
        (["push"] if partner.token_env else [])
        + (["poll"] if isinstance(partner.channel, RestChannel) else [])
        + (["file"] if isinstance(partner.channel, SftpChannel) else [])
    )


def status(store: Store, config: HubConfig, tenant: str, period: Period) -> list[VendorStatus]:
    """Every visit vendor of `tenant`; LookupError for a tenant not in the configuration."""
    found = config.tenant(tenant)
    if found is None:
        raise LookupError(f"no tenant {tenant} in the configuration")
    vendors = [partner for partner in found.partners if partner.kind == "visit_vendor"]
    in_period = (VISIT_START >= period.starts_at()) & (VISIT_START < period.ends_at())
    with store.begin() as conn:
        counts = {
            row.vendor: row
            for row in conn.execute(
                select(
                    visits.c.vendor,
                    func.count().label("versions"),
                    func.count(func.distinct(visits.c.visit_id)).label("visits"),
                )
                .where(visits.c.tenant == tenant, in_period)
                .group_by(visits.c.vendor)
            )
        }
        result = []
        for vendor in vendors:
            of_vendor = (
                (messages.c.tenant == tenant) & (messages.c.type == "visit.batch") & (messages.c.source == vendor.id)
            )
            batches = conn.scalars(
                select(messages.c.envelope).where(of_vendor, messages.c.stored_at >= period.starts_at())
            ).all()
            last_batch = conn.scalar(select(func.max(messages.c.stored_at)).where(of_vendor))
            last_poll = conn.scalar(
                select(checkpoints.c.updated_at).where(checkpoints.c.name == f"visits.cursor:{tenant}:{vendor.id}")
            )
            letters = conn.scalar(
                select(func.count())
                .select_from(dead_letters)
                .where(
                    dead_letters.c.tenant == tenant,
                    dead_letters.c.status == "open",
                    dead_letters.c.step.like("visits.%"),
                    dead_letters.c.message_id.in_(select(messages.c.id).where(of_vendor))
                    | dead_letters.c.reason.startswith(f"{vendor.id} "),
                )
            )
            stored = counts.get(vendor.id)
            result.append(
                VendorStatus(
                    vendor=vendor.id,
                    channels=channels_of(vendor),
                    versions=stored.versions if stored else 0,
                    visits=stored.visits if stored else 0,
                    last_batch_at=last_batch,
                    last_poll_at=last_poll,
                    rejected=sum(json.loads(envelope)["payload"]["rejected"] for envelope in batches),
                    open_dead_letters=letters,
                )
            )
    return result
