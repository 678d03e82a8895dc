"""`visits.files` (every minute): daily CSV files that have a done-file, stored in chunks and
archived; a file that cannot be read, or is named outside the contract, goes to `failed/` with
the reason, and the files after it are taken as usual."""

from __future__ import annotations

import logging
from functools import partial
from typing import BinaryIO

from adapters.channels import pick_up, source_for
from adapters.visit_codecs import parse_visit_file_name, read_visit_csv, visit_file_pattern
from core import transfers
from core.config import Partner, Tenant
from core.errors import Misconfigured, Rejected, Transient
from core.scheduler import JobContext, scheduled
from flows.visits.channels import configuration_error, vendors
from flows.visits.versions import in_transaction, store
from schemas.visits import Visit, VisitRejection

log = logging.getLogger(__name__)

CHUNK = 5000


def pick_up_files(ctx: JobContext, tenant: str, vendor: Partner) -> tuple[int, int]:
    """Store every ready CSV file of the vendor; returns (files archived, files failed).

    A file whose name is outside the contract, that cannot be read, or that fails in any way
    but an outage of the store goes to `failed/` with its reason, kept as a dead letter for IT
    operations, and the folder moves on. An outage leaves the file where it is for the next round.
    """

    def handle(name: str, file: BinaryIO) -> None:
        _check_name(name, vendor.id)
        _store_file(ctx, tenant, vendor.id, name, file)

    source = source_for(vendor)
    if source is None:
        raise Misconfigured(f"{vendor.id} has no folder of files to pick up", where="channel")
    settled = partial(transfers.picked_up, ctx.store, tenant=tenant, partner=vendor.id)
    done = pick_up(source, visit_file_pattern(vendor.id), handle, settled=settled)
    for name, reason in done.failed:
        configuration_error(ctx, tenant, "visits.file", f"{vendor.id} {name}: {reason}")
    return len(done.archived), len(done.failed)


def _check_name(name: str, vendor: str) -> None:
    """Rejected (saying why, without repeating the name) when `name` is not one of `vendor`'s files."""
    try:
        named, _date, _seq = parse_visit_file_name(name)
    except Rejected as error:
        raise Rejected(f"the name is outside the contract: {error.reason}") from None
    if named != vendor:
        raise Rejected(f"the file is named for vendor {named}, not {vendor}")


def _store_file(ctx: JobContext, tenant: str, vendor: str, name: str, local: BinaryIO) -> None:
    """Stream the file's rows into the store in chunks; Rejected when the file as a whole is unreadable.
    A row that is wrong, or that the store cannot hold, is rejected with its line."""
    accepted: list[Visit] = []
    lines: list[str] = []
    rejected: list[VisitRejection] = []
    for line, item in read_visit_csv(local):
        if isinstance(item, Visit):
            accepted.append(item)
            lines.append(f"{name} line {line}")
        else:
            rejected.append(VisitRejection(visit_id=item.visit_id, reason=f"{name} {item.reason}"))
        if len(accepted) + len(rejected) >= CHUNK:
            _store_chunk(ctx, tenant, vendor, accepted, rejected, lines)
            accepted, rejected, lines = [], [], []
    _store_chunk(ctx, tenant, vendor, accepted, rejected, lines)


def _store_chunk(ctx: JobContext, tenant, vendor, accepted, rejected, lines) -> None:
    in_transaction(
        ctx.store,
        lambda conn, one_by_one: store(
            conn,
            tenant=tenant,
            vendor=vendor,
            accepted=accepted,
            rejected=rejected,
            raw=None,
            channel="file",
            where=lines,
            one_by_one=one_by_one,
        ),
    )


@scheduled("visits.files")
def pick_up_all_files(ctx: JobContext, owner: Tenant) -> int:
    archived = 0
    for tenant, vendor in vendors(ctx.config, tenant=owner.code):
        try:
            if source_for(vendor) is not None:
                archived += pick_up_files(ctx, tenant, vendor)[0]
        except Transient as error:
            log.warning("visit files of %s not picked up: %s; the next round tries again", vendor.id, error)
        except (Misconfigured, Rejected) as error:
            configuration_error(ctx, tenant, "visits.file", f"{vendor.id}: {error}")
    return archived
