"""Visit reporting: visits from several mobile-reporting vendors, on any of three channels
(contract: specs/mobile-reporting.md), stored with every version and the time the hub got it.

- push: `POST /api/v1/visits` answers 202 only after the accepted visits are stored;
- poll: `visits.poll` (every minute) reads each polled vendor's pages; a page and the cursor
  after it commit together, so a crash between pages neither skips nor repeats;
- file: `visits.files` (every minute) picks up daily CSV files that have a done-file, stores
  them in chunks, archives them; a file that cannot be read, or is named outside the contract,
  goes to `failed/` with the reason, and the files after it are taken as usual.

A rejected visit (wrong, a conflict with a stored version, or a row the store cannot hold) never
stops the rest of its batch; a batch's rejections are kept as one dead letter with every reason.
"""
from __future__ import annotations

import logging
import tempfile
import traceback
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, select, tuple_

from adapters.channels import secret, sftp_endpoint
from adapters.rest import VisitVendorApi
from adapters.sftp import SftpConnection
from adapters.visit_codecs import decode_poll_page, parse_visit_file_name, read_visit_csv, visit_file_pattern
from core import deadletters, messages
from core.config import Partner, RestChannel, SftpChannel
from core.errors import Misconfigured, Rejected, Transient
from core.redaction import redact
from core.scheduler import every
from core.store import Store, insert_ignore, is_outage, utcnow
from core.store.tables import checkpoints, dead_letters
from flows.visits.tables import visits
from schemas.envelope import Envelope, new_id
from schemas.visits import Visit, VisitRejection

log = logging.getLogger(__name__)

PAGE = 1000
CHUNK = 5000
T = TypeVar("T")


class PoisonBatch(Exception):
    """The store refused a batch as a whole, which spoils the transaction on PostgreSQL: store it
    again in a new transaction, row by row (`in_transaction` does), to find the rows it cannot hold."""


def in_transaction(db: Store, write: Callable[[Connection, bool], T]) -> T:
    """`write(conn, one_by_one)` in a transaction; after a PoisonBatch, once more in a new one, row by
    row. The fast way costs nothing extra (no savepoint) while no row is poison."""
    try:
        with db.begin() as conn:
            return write(conn, False)
    except PoisonBatch:
        with db.begin() as conn:
            return write(conn, True)


def store(conn: Connection, *, tenant: str, vendor: str, accepted: list[Visit], rejected: list[VisitRejection],
          raw: bytes | None, channel: str, where: list[str] | None = None,
          one_by_one: bool = False) -> list[VisitRejection]:
    """Store a batch as received (its bytes as one message) and each accepted visit version as a row;
    returns every rejection of the batch, the ones found here included.

    A version already stored with the same content is left as it was, so a replayed batch changes
    nothing; with other content it is a conflict (an edit needs a higher version), rejected. When
    the store refuses the batch, PoisonBatch; `one_by_one` then rejects each row the store cannot
    hold alone, named by `where` (e.g. a file's line), and stores the rest. The batch's rejections
    are kept as one dead letter holding every reason.
    """
    message_id = new_id()
    where = where or [f"visits[{i}]" for i in range(len(accepted))]
    rows = [_row(tenant, vendor, visit, message_id, utcnow()) for visit in accepted]
    refused = _insert_one_by_one(conn, rows) if one_by_one else _insert(conn, rows)
    rejected = rejected + [VisitRejection(visit_id=accepted[i].visit_id, reason=f"{where[i]}: {reason}")
                           for i, reason in refused]
    envelope = Envelope(id=message_id, type="visit.batch", tenant=tenant, source=vendor, payload={
        "channel": channel, "visits": len(accepted) - len(refused), "rejected": len(rejected)})
    messages.accept(conn, [(envelope, raw)])
    if rejected:
        reasons = "\n".join(f"visit {r.visit_id or '?'}: {r.reason}" for r in rejected)
        deadletters.record(conn, step=f"visits.{channel}", kind="rejected", tenant=tenant, message_id=message_id,
                           reason=f"{len(rejected)} visits of {vendor} rejected:\n{reasons}")
    return rejected


def _insert(conn: Connection, rows: list[dict]) -> list[tuple[int, str]]:
    """Insert visit versions, skipping those already stored; (index, reason) of each conflict with a
    stored version. PoisonBatch when the store refuses the batch."""
    if not rows:
        return []
    try:
        inserted = _insert_all(conn, rows)
    except Exception as error:
        if is_outage(error):
            raise
        raise PoisonBatch(f"the store refused the batch ({type(error).__name__})") from error
    return _conflicts(conn, rows) if inserted < len(rows) else []


def _insert_all(conn: Connection, rows: list[dict]) -> int:
    """The rows inserted. On PostgreSQL through COPY into a temporary table and one INSERT ... ON
    CONFLICT DO NOTHING: several times faster than INSERTs."""
    if conn.dialect.name != "postgresql":
        return len(insert_ignore(conn, visits, rows, returning=[visits.c.version]).all())
    columns = [column.name for column in visits.columns]
    with conn.connection.driver_connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS visits_incoming (LIKE visits) ON COMMIT DELETE ROWS")
        with cursor.copy(f"COPY visits_incoming ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[name] for name in columns])
        cursor.execute("INSERT INTO visits SELECT * FROM visits_incoming ON CONFLICT DO NOTHING")
        return cursor.rowcount


def _insert_one_by_one(conn: Connection, rows: list[dict]) -> list[tuple[int, str]]:
    """The slow way, taken only after a PoisonBatch: each row alone, so that one poison row (a value
    the store cannot hold) is refused and the others stored."""
    refused = []
    for i, row in enumerate(rows):
        try:
            with conn.begin_nested():
                inserted = len(insert_ignore(conn, visits, row, returning=[visits.c.version]).all())
        except Exception as error:
            if is_outage(error):
                raise
            refused.append((i, f"the store cannot hold this visit ({type(error).__name__})"))
            continue
        if not inserted:
            refused += [(i, reason) for _, reason in _conflicts(conn, [row])]
    return refused


CONTENT = [column.name for column in visits.columns if column.name not in ("received_at", "message_id")]
"""What makes two stored versions the same: every column but when and in which message it came."""


def _conflicts(conn: Connection, rows: list[dict]) -> list[tuple[int, str]]:
    """(index, reason) of the rows whose key is stored with other content."""
    keys = [(row["tenant"], row["vendor"], row["visit_id"], row["version"]) for row in rows]
    key = tuple_(visits.c.tenant, visits.c.vendor, visits.c.visit_id, visits.c.version)
    stored = {}
    for start in range(0, len(keys), 500):
        query = select(*[visits.c[name] for name in CONTENT]).where(key.in_(keys[start:start + 500]))
        stored |= {tuple(found[:4]): tuple(found) for found in conn.execute(query)}
    return [(i, f"conflict: version {row['version']} is stored with other content; an edit needs a higher version")
            for i, row in enumerate(rows)
            if stored.get(keys[i]) not in (None, tuple(row[name] for name in CONTENT))]


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
                raise Rejected(f"the page after cursor {cursor!r}: {error}") from None
            def page_and_cursor(conn: Connection, one_by_one: bool) -> None:  # together, or neither
                store(conn, tenant=tenant, vendor=vendor.id, accepted=accepted, rejected=rejected, raw=raw,
                      channel="poll", one_by_one=one_by_one)
                insert_ignore(conn, checkpoints, {"name": name, "value": "", "updated_at": utcnow()})
                conn.execute(checkpoints.update().where(checkpoints.c.name == name)
                             .values(value=next_cursor or cursor, updated_at=utcnow()))

            in_transaction(hub.store, page_and_cursor)
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
        except (Misconfigured, Rejected) as error:  # a refused token, a page that cannot be read
            _configuration_error(hub, tenant, "visits.poll", f"{vendor.id}: {error}")
    return stored


# --- daily files over SFTP ------------------------------------------------------------------

def pick_up_files(hub, tenant: str, vendor: Partner) -> tuple[int, int]:
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
                    _store_file(hub, tenant, vendor.id, name, local)
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
                _configuration_error(hub, tenant, "visits.file", f"{vendor.id} {name}: {reason}")
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


def _store_file(hub, tenant: str, vendor: str, name: str, local) -> None:
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
            _store_chunk(hub, tenant, vendor, accepted, rejected, lines)
            accepted, rejected, lines = [], [], []
    _store_chunk(hub, tenant, vendor, accepted, rejected, lines)


def _store_chunk(hub, tenant, vendor, accepted, rejected, lines) -> None:
    in_transaction(hub.store, lambda conn, one_by_one: store(
        conn, tenant=tenant, vendor=vendor, accepted=accepted, rejected=rejected, raw=None, channel="file",
        where=lines, one_by_one=one_by_one))


@every(60, name="visits.files")
def pick_up_all_files(hub) -> int:
    archived = 0
    for tenant, vendor in vendors(hub.config, SftpChannel):
        try:
            archived += pick_up_files(hub, tenant, vendor)[0]
        except Transient as error:
            log.warning("visit files of %s not picked up: %s; the next round tries again", vendor.id, error)
        except (Misconfigured, Rejected) as error:
            _configuration_error(hub, tenant, "visits.file", f"{vendor.id}: {error}")
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

