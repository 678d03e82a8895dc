"""`visits.files` (every minute): daily CSV files that have a done-file, stored in chunks and
archived; a file that cannot be read, or is named outside the contract, goes to `failed/` with
the reason, and the files after it are taken as usual."""

from __future__ import annotations

import logging
import tempfile
import traceback

from adapters.channels import sftp_endpoint
from adapters.sftp import SftpConnection
from adapters.visit_codecs import parse_visit_file_name, read_visit_csv, visit_file_pattern
from core.config import Partner, SftpChannel
from core.errors import Misconfigured, Rejected, Transient
from core.redaction import redact
from core.scheduler import JobContext, every
from core.store import is_outage
from flows.visits.channels import configuration_error, vendors
from flows.visits.versions import in_transaction, store
from schemas.visits import Visit, VisitRejection

log = logging.getLogger(__name__)

CHUNK = 5000


def pick_up_files(ctx: JobContext, tenant: str, vendor: Partner) -> tuple[int, int]:
    """Store every ready CSV file of the vendor; returns (files archived, files failed).

    A file whose name is outside the contract, that cannot be read, or that fails in any way
    but an outage of the store goes to `failed/` with its reason, and the folder moves on. An
    outage leaves the file where it is for the next round.
    """
    folder = vendor.channel.outbound_dir
    archived = failed = 0
    with SftpConnection(sftp_endpoint(vendor)) as sftp:
        for name in sftp.ready_files(folder, pattern=visit_file_pattern(vendor.id)):
            try:
                _check_name(name, vendor.id)
                with tempfile.TemporaryFile() as local:
                    sftp.download(f"{folder}/{name}", local)
                    local.seek(0)
                    _store_file(ctx, tenant, vendor.id, name, local)
            except (Transient, Misconfigured):
                raise
            except Exception as error:
                if is_outage(error):
                    raise Transient(f"the store is not reachable: {type(error).__name__}") from error
                if isinstance(error, Rejected):
                    reason = str(error)
                else:
                    reason = f"could not be processed ({type(error).__name__})"
                    log.error("visit file %s of %s failed\n%s", name, vendor.id, redact(traceback.format_exc()))
                sftp.fail(folder, name, reason)
                configuration_error(ctx, tenant, "visits.file", f"{vendor.id} {name}: {reason}")
                failed += 1
                continue
            sftp.archive(folder, name)
            archived += 1
    return archived, failed


def _check_name(name: str, vendor: str) -> None:
    """Rejected (saying why, without repeating the name) when `name` is not one of `vendor`'s files."""
    try:
        named, _date, _seq = parse_visit_file_name(name)
    except Rejected as error:
        raise Rejected(f"the name is outside the contract: {error.reason}") from None
    if named != vendor:
        raise Rejected(f"the file is named for vendor {named}, not {vendor}")


def _store_file(ctx: JobContext, tenant: str, vendor: str, name: str, local) -> None:
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


@every(60, name="visits.files")
def pick_up_all_files(ctx: JobContext) -> int:
    archived = 0
    for tenant, vendor in vendors(ctx.config, SftpChannel):
        try:
            archived += pick_up_files(ctx, tenant, vendor)[0]
        except Transient as error:
            log.warning("visit files of %s not picked up: %s; the next round tries again", vendor.id, error)
        except (Misconfigured, Rejected) as error:
            configuration_error(ctx, tenant, "visits.file", f"{vendor.id}: {error}")
    return archived
