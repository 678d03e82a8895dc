"""`casehub visits`: visits from the mobile-reporting vendors, their intake and rounds."""

from __future__ import annotations

import typer

from cli.common import CONFIG, FAILED, build_hub, fail, new_table, open_store, out, period_of

app = typer.Typer(no_args_is_help=True, help="Visits from the mobile-reporting vendors: intake and rounds")


@app.command("status")
def visits_status(tenant: str = typer.Option(...), period: str = typer.Option(..., help="YYYY-MM")) -> None:
    """Per vendor: versions stored that start in the period, the last batch and poll, rejects."""
    from flows.visits.queries import status

    store, config = open_store()
    try:
        vendors = status(store, config, tenant, period_of(period))
    except LookupError as error:
        raise fail(f"--tenant: {error}", CONFIG) from None
    table = new_table(
        "vendor",
        "channels",
        "versions",
        "visits",
        "last batch",
        "last poll",
        "rejected",
        "open dead letters",
        title=f"{tenant} {period}: visits stored",
    )
    for vendor in vendors:
        table.add_row(
            vendor.vendor,
            ",".join(vendor.channels),
            f"{vendor.versions:,}",
            f"{vendor.visits:,}",
            _local(vendor.last_batch_at),
            _local(vendor.last_poll_at),
            str(vendor.rejected),
            str(vendor.open_dead_letters),
        )
    out.print(table)


@app.command("poll")
def visits_poll(tenant: str = typer.Option(...), vendor: str = typer.Option(...)) -> None:
    """Poll a vendor's API now, from the stored cursor on, instead of waiting for the minute."""
    from core.config import RestChannel
    from core.errors import Misconfigured, Rejected, Transient
    from flows.visits.poll import poll

    hub = build_hub()
    partner = _vendor(hub, tenant, vendor, RestChannel, "rest channel to poll")
    try:
        stored = poll(hub.jobs, tenant, partner)
    except Misconfigured as error:
        raise fail(f"{vendor}: {error}", CONFIG) from None
    except (Transient, Rejected) as error:
        raise fail(f"{vendor}: {error}") from None
    out.print(f"{vendor}: {stored:,} visit versions stored")


@app.command("pickup")
def visits_pickup(tenant: str = typer.Option(...), vendor: str = typer.Option(...)) -> None:
    """Pick up a vendor's ready files now, instead of waiting for the minute."""
    from core.config import SftpChannel
    from core.errors import Misconfigured, Rejected, Transient
    from flows.visits.files import pick_up_files

    hub = build_hub()
    partner = _vendor(hub, tenant, vendor, SftpChannel, "sftp channel to pick up files from")
    try:
        archived, failed = pick_up_files(hub.jobs, tenant, partner)
    except Misconfigured as error:
        raise fail(f"{vendor}: {error}", CONFIG) from None
    except (Transient, Rejected) as error:
        raise fail(f"{vendor}: {error}") from None
    out.print(f"{vendor}: {archived} files stored and archived, {failed} failed (see dead-letters list)")
    if failed:
        raise typer.Exit(FAILED)


def _vendor(hub, tenant: str, vendor: str, channel: type, needs: str):
    partner = hub.config.partner(tenant, vendor)
    if partner is None or partner.kind != "visit_vendor":
        raise fail(f"--vendor: no visit vendor {vendor} in tenant {tenant}", CONFIG)
    if not isinstance(partner.channel, channel):
        raise fail(f"--vendor: {vendor} has no {needs}", CONFIG)
    return partner


def _local(when) -> str:
    from schemas.money import STOCKHOLM

    return f"{when.astimezone(STOCKHOLM):%Y-%m-%d %H:%M}" if when else ""
