"""Visit reporting: visits from several mobile-reporting vendors, on any of three channels
(contract: specs/mobile-reporting.md), stored with every version and the time the hub got it.

- push: `POST /api/v1/visits` answers 202 only after the accepted visits are stored;
- poll: `visits.poll` (every minute) reads each polled vendor's pages; a page and the cursor
  after it commit together, so a crash between pages neither skips nor repeats;
- file: `visits.files` (every minute) picks up daily CSV files that have a done-file, stores
  them in chunks, archives them; a file that cannot be read goes to `failed/` with the reason.

A rejected visit never stops the rest of its batch; it is kept as a dead letter with its reason.
"""
from __future__ import annotations

import logging
import tempfile

from sqlalchemy import Connection, select

from adapters.channels import secret, sftp_endpoint
from adapters.rest import VisitVendorApi
from adapters.sftp import SftpConnection
from adapters.visit_codecs import decode_poll_page, read_visit_csv, visit_file_pattern
from core import deadletters, messages
from core.config import Partner, RestChannel, SftpChannel
from core.errors import Rejected, Transient
from core.scheduler import every
from core.store import insert_ignore, utcnow
from core.store.tables import checkpoints, dead_letters
from flows.visits.tables import visits
from schemas.envelope import Envelope
from schemas.visits import Visit, VisitRejection

log = logging.getLogger(__name__)

PAGE = 1000
CHUNK = 5000


def store(conn: Connection, *, tenant: str, vendor: str, accepted: list[Visit], rejected: list[VisitRejection],
          raw: bytes | None, channel: str) -> str:
    """Store a batch as received (its bytes as one message) and each accepted visit version as a row.
    A version already stored is left as it was, so a replayed batch changes nothing."""
    envelope = Envelope(type="visit.batch", tenant=tenant, source=vendor,
                        payload={"channel": channel, "visits": len(accepted), "rejected": len(rejected)})
    messages.accept(conn, [(envelope, raw)])
    now = utcnow()
    if accepted:
        _insert(conn, [_row(tenant, vendor, visit, envelope.id, now) for visit in accepted])
    for rejection in rejected:
        deadletters.record(conn, step=f"visits.{channel}", kind="rejected", tenant=tenant, message_id=envelope.id,
                           reason=f"{vendor} visit {rejection.visit_id or '?'}: {rejection.reason}")
    return envelope.id


def _insert(conn: Connection, rows: list[dict]) -> None:
    """Insert visit versions, skipping those already stored. On PostgreSQL through COPY into a
    temporary table and one INSERT ... ON CONFLICT DO NOTHING: several times faster than INSERTs."""
    if conn.dialect.name != "postgresql":
        insert_ignore(conn, visits, rows)
        return
    columns = [column.name for column in visits.columns]
    with conn.connection.driver_connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS visits_incoming (LIKE visits) ON COMMIT DELETE ROWS")
        with cursor.copy(f"COPY visits_incoming ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[name] for name in columns])
        cursor.execute("INSERT INTO visits SELECT * FROM visits_incoming ON CONFLICT DO NOTHING")


def _row(tenant: str, vendor: str, visit: Visit, message_id: str, now) -> dict:
    return {
        "tenant": tenant, "vendor": vendor, "visit_id": visit.visit_id, "version": visit.version,
        "received_at": now, "message_id": message_id, "provider_org": visit.provider_org.digits,
        "customer": visit.customer_pnr.digits, "employee_id": visit.employee_id,
        "planned_start": visit.planned_start, "planned_end": visit.planned_end,
        "actual_start": visit.actual_start, "actual_end": visit.actual_end, "confirmation": visit.confirmation,
        "tag_id": visit.tag_id, "manual_reason": visit.manual_reason, "services": ",".join(visit.services),
        "double_staffing": visit.double_staffing, "declined": visit.declined, "approved": visit.approved,
        "edit_reason": visit.edit_reason,
    }


def vendors(config, kind) -> list[tuple[str, Partner]]:
    """(tenant, vendor) for every visit vendor reached over a channel of type `kind`."""
    return [(tenant.code, partner) for tenant in config.tenants for partner in tenant.partners
            if partner.kind == "visit_vendor" and isinstance(partner.channel, kind)]


# --- poll -----------------------------------------------------------------------------------

def poll(hub, tenant: str, vendor: Partner, *, page_size: int = PAGE, max_pages: int = 100) -> int:
    """Read the vendor's pages from the stored cursor on; returns the visits stored."""
    name = f"visits.cursor:{tenant}:{vendor.id}"
    api = VisitVendorApi(str(vendor.channel.url), secret(vendor.channel.token_env, vendor),
                         timeout=vendor.channel.timeout)
    stored = 0
    try:
        for _ in range(max_pages):
            with hub.store.begin() as conn:
                cursor = conn.scalar(select(checkpoints.c.value).where(checkpoints.c.name == name)) or ""
            raw = api.page(cursor, page_size)
            try:
                accepted, rejected, next_cursor, has_more = decode_poll_page(raw)
            except Rejected as error:
                raise Rejected(f"{vendor.id} page after cursor {cursor!r}: {error}") from None
            with hub.store.begin() as conn:  # the page and the cursor after it, together
                store(conn, tenant=tenant, vendor=vendor.id, accepted=accepted, rejected=rejected, raw=raw,
                      channel="poll")
                insert_ignore(conn, checkpoints, {"name": name, "value": "", "updated_at": utcnow()})
                conn.execute(checkpoints.update().where(checkpoints.c.name == name)
                             .values(value=next_cursor or cursor, updated_at=utcnow()))
            stored += len(accepted)
            if not has_more:
                break
    finally:
        api.close()
    return stored


@every(60, name="visits.poll")
def poll_all(hub) -> int:
    stored = 0
    for tenant, vendor in vendors(hub.config, RestChannel):
        try:
            stored += poll(hub, tenant, vendor)
        except Transient as error:
            log.warning("polling %s: %s; the next round tries again", vendor.id, error)
        except Rejected as error:
            _configuration_error(hub, tenant, "visits.poll", str(error))
    return stored


# --- daily files over SFTP ------------------------------------------------------------------

def pick_up_files(hub, tenant: str, vendor: Partner) -> tuple[int, int]:
    """Store every ready CSV file of the vendor; returns (files archived, files failed)."""
    folder = vendor.channel.outbound_dir
    archived = failed = 0
    with SftpConnection(sftp_endpoint(vendor)) as sftp:
        for name in sftp.ready_files(folder, pattern=visit_file_pattern(vendor.id)):
            with tempfile.TemporaryFile() as local:
                sftp.download(f"{folder}/{name}", local)
                local.seek(0)
                try:
                    _store_file(hub, tenant, vendor.id, name, local)
                except Rejected as error:
                    sftp.fail(folder, name, str(error))
                    _configuration_error(hub, tenant, "visits.file", f"{vendor.id} {name}: {error}")
                    failed += 1
                    continue
            sftp.archive(folder, name)
            archived += 1
    return archived, failed


def _store_file(hub, tenant: str, vendor: str, name: str, local) -> None:
    """Stream the file's rows into the store in chunks; Rejected when the file as a whole is unreadable."""
    accepted: list[Visit] = []
    rejected: list[VisitRejection] = []
    for _line, item in read_visit_csv(local):
        if isinstance(item, Visit):
            accepted.append(item)
        else:
            rejected.append(VisitRejection(visit_id=item.visit_id, reason=f"{name} {item.reason}"))
        if len(accepted) + len(rejected) >= CHUNK:
            _store_chunk(hub, tenant, vendor, accepted, rejected)
            accepted, rejected = [], []
    _store_chunk(hub, tenant, vendor, accepted, rejected)


def _store_chunk(hub, tenant, vendor, accepted, rejected) -> None:
    with hub.store.begin() as conn:
        store(conn, tenant=tenant, vendor=vendor, accepted=accepted, rejected=rejected, raw=None, channel="file")


@every(60, name="visits.files")
def pick_up_all_files(hub) -> int:
    archived = 0
    for tenant, vendor in vendors(hub.config, SftpChannel):
        try:
            archived += pick_up_files(hub, tenant, vendor)[0]
        except (Transient, Rejected) as error:
            log.warning("visit files of %s not picked up: %s", vendor.id, error)
    return archived


def _configuration_error(hub, tenant: str, step: str, reason: str) -> None:
    """Keep an error IT operations must act on as one open dead letter, not one per round."""
    with hub.store.begin() as conn:
        already = conn.scalar(select(dead_letters.c.id).where(
            dead_letters.c.step == step, dead_letters.c.tenant == tenant, dead_letters.c.reason == reason,
            dead_letters.c.status == "open"))
        if already is None:
            deadletters.record(conn, step=step, kind="rejected", tenant=tenant, reason=reason)
    log.error("%s: %s", step, reason)

