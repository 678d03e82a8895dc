"""`visits.poll` (every minute): each polled vendor's pages read from the stored cursor on; a page
and the cursor after it commit together, so a crash between pages neither skips nor repeats."""

from __future__ import annotations

import logging

from sqlalchemy import Connection, select

from adapters.channels import secret
from adapters.rest import VisitVendorApi
from adapters.visit_codecs import decode_poll_page
from core.config import Partner, RestChannel, Tenant
from core.errors import Misconfigured, Rejected, Transient
from core.scheduler import JobContext, scheduled
from core.store import insert_ignore, utcnow
from core.store.tables import checkpoints
from flows.visits.channels import configuration_error, vendors
from flows.visits.versions import in_transaction, store

log = logging.getLogger(__name__)

PAGE = 1000


def poll(ctx: JobContext, tenant: str, vendor: Partner, *, page_size: int = PAGE, max_pages: int = 100) -> int:
    """Read the vendor's pages from the stored cursor on; returns the visits stored."""
    name = f"visits.cursor:{tenant}:{vendor.id}"
    api = VisitVendorApi(
        str(vendor.channel.url), secret(vendor.channel.token_env, vendor), timeout=vendor.channel.timeout
    )
    stored = 0
    try:
        for _ in range(max_pages):
            with ctx.store.begin() as conn:
                cursor = conn.scalar(select(checkpoints.c.value).where(checkpoints.c.name == name)) or ""
            raw = api.page(cursor, page_size)
            try:
                accepted, rejected, next_cursor, has_more = decode_poll_page(raw)
            except Rejected as error:
                raise Rejected(f"the page after cursor {cursor!r}: {error}") from None

            def page_and_cursor(conn: Connection, one_by_one: bool) -> None:  # together, or neither
                store(
                    conn,
                    tenant=tenant,
                    vendor=vendor.id,
                    accepted=accepted,
                    rejected=rejected,
                    raw=raw,
                    channel="poll",
                    one_by_one=one_by_one,
                )
                insert_ignore(conn, checkpoints, {"name": name, "value": "", "updated_at": utcnow()})
                conn.execute(
                    checkpoints.update()
                    .where(checkpoints.c.name == name)
                    .values(value=next_cursor or cursor, updated_at=utcnow())
                )

            in_transaction(ctx.store, page_and_cursor)
            stored += len(accepted)
            if not has_more:
                break
    finally:
        api.close()
    return stored


@scheduled("visits.poll")
def poll_all(ctx: JobContext, owner: Tenant) -> int:
    stored = 0
    for tenant, vendor in vendors(ctx.config, RestChannel, tenant=owner.code):
        try:
            stored += poll(ctx, tenant, vendor)
        except Transient as error:
            log.warning("polling %s: %s; the next round tries again", vendor.id, error)
        except (Misconfigured, Rejected) as error:  # a refused token, a page that cannot be read
            configuration_error(ctx, tenant, "visits.poll", f"{vendor.id}: {error}")
    return stored
