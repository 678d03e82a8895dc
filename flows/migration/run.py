"""A migration run over an export folder: every record judged, in dependency order, and each
migrated record sent to the case system through the store and the outbox.

The files are read in `FILES` order (persons, cases, decisions, notes) a batch at a time. A batch's
verdicts, its sends and the run's checkpoint (the file and line judged last) commit in one
transaction: a run killed at any moment resumes from its checkpoint and never sends a record twice.
What was ever sent is kept per tenant (`migration_sent`), so a second run over the same files sends
nothing new, and a record whose content changed since is sent again. A dry run judges and reports
and sends nothing; its verdicts are those a real run would give.

The lines of one journal note are taken to stand together in JOURNAL.DAT (a batch never splits
them); they are joined in continuation order, a missing continuation kept as a warning.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, insert, select, update

from adapters.legacy_export import FILES, ExportFile, NoteLine, Record, Rejection, key_of, parse
from core import audit, messages
from core.consumer import CASE_SYSTEM
from core.errors import Rejected
from core.store import Store, among, insert_many, utcnow
from flows.migration.tables import files, runs, sent, verdicts
from schemas.envelope import Envelope
from schemas.legacy import LegacyCase, LegacyDecision, LegacyJournalNote, LegacyPerson

BATCH = 2000
"""Records judged, and committed with the checkpoint, at a time."""

KINDS = {"PERS.DAT": "person", "ARENDE.DAT": "case", "BESLUT.DAT": "decision", "JOURNAL.DAT": "note"}
TYPES = {"person": "legacy.person", "case": "legacy.case", "decision": "legacy.decision", "note": "legacy.journal_note"}
NAMESPACE = uuid.UUID("6f1c1c36-8a3e-4b5e-9d0c-6a2b1f0e7c11")
"""Envelope ids are derived from the tenant, the run, the document and its content: the same
document sent again by a resumed run has the same id, and a document changed back to what an
earlier run sent is a new message."""

ANALYZE_EVERY = 25
"""Batches between refreshes of the verdicts' statistics (see `_analyze`)."""

END = 2**31 - 1
"""The checkpoint's line once the last file is read to its end."""

VERDICT_COLUMNS = ("run_id", "file", "line", "key", "digest", "verdict", "reason", "same_as_line", "document", "raw")

Progress = Callable[[str, int], None]
"""Told the file being read and the records judged in it so far."""


def start(store: Store, tenant: str, folder: Path, *, dry_run: bool, by: str) -> int:
    """A new run over `folder`; run it with `go`."""
    with store.begin() as conn:
        run_id = int(
            conn.execute(
                insert(runs)
                .values(
                    tenant=tenant,
                    folder=str(folder.resolve()),
                    dry_run=dry_run,
                    status="running",
                    line=0,
                    started_at=utcnow(),
                    started_by=by,
                )
                .returning(runs.c.id)
            ).scalar_one()
        )
        audit.record(
            conn,
            actor=by,
            action="migration.start",
            tenant=tenant,
            subject=f"migration-run:{run_id}",
            detail=("dry run of " if dry_run else "") + str(folder),
        )
    return run_id


def go(store: Store, run_id: int, *, progress: Progress | None = None) -> None:
    """Run (or resume) the run from its checkpoint to the end of the last file."""
    with store.begin() as conn:
        run = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    if run is None:
        raise LookupError(f"no migration run {run_id}")
    if run.status == "done":
        return
    folder = Path(run.folder)
    order = list(FILES)
    first = order.index(run.file) if run.file in order else 0
    export_date = run.export_date
    for name in order[first:]:
        skip = run.line if name == run.file else 0
        export_date = _read_file(store, run, folder / name, skip, export_date, progress)
    with store.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(status="done", finished_at=utcnow()))


def _read_file(
    store: Store, run: Any, path: Path, skip: int, export_date: dt.date | None, progress: Progress | None
) -> dt.date | None:
    name = path.name
    with ExitStack() as stack:
        try:
            export = stack.enter_context(ExportFile(path))
        except FileNotFoundError:
            _file_done(store, run, name, (None, None), "the file is not in the folder")
            return export_date
        except Rejected as error:  # its header: the file cannot be read at all
            _file_done(
                store, run, name, (None, None), f"{error.where}: {error.reason}" if error.where else error.reason
            )
            return export_date
        export_date = export_date or export.header.export_date
        judged = skip
        for number, batch in enumerate(_parsed(_batches(export, skip, name), export_date)):
            if number % ANALYZE_EVERY == 1:
                _analyze(store)
            _judge(store, run, name, batch, export_date)
            judged += len(batch)
            if progress is not None:
                progress(name, judged)
        _file_done(store, run, name, (export.trailer_count, export.trailer_line), None)
    return export_date


def _analyze(store: Store) -> None:
    """Fresh statistics of the verdicts and of what was sent, on PostgreSQL: both grow by the batch
    within one run, and with the statistics of an empty table each batch's lookup by key became a
    scan of it all (a dry run of 100 000 records took 26 s instead of 5; a full run's cases and
    decisions went at 1 000 records/s instead of 10 000)."""
    if store.engine.dialect.name == "postgresql":
        with store.begin() as conn:
            conn.exec_driver_sql("ANALYZE migration_verdicts, migration_sent")


def _batches(export: ExportFile, skip: int, name: str) -> Iterator[list[Record]]:
    """The records after line `skip`, a batch at a time; a journal note's lines in one batch."""
    batch: list[Record] = []
    for record in export:
        if record.line <= skip:
            continue
        if len(batch) >= BATCH and (name != "JOURNAL.DAT" or _note_of(record) != _note_of(batch[-1])):
            yield batch
            batch = []
        batch.append(record)
    if batch:
        yield batch


Parsed = list[tuple[Record, str, tuple[str, Any] | Rejection]]
"""A batch's records, each with the SHA-256 of its bytes and what `parse` made of it."""


def _parsed(batches: Iterator[list[Record]], export_date: dt.date) -> Iterator[Parsed]:
    """Each batch parsed, the next one in a thread while this one is judged: most of a batch's time
    in `_judge` is spent waiting on the store, which lets the thread run."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="migration-parse") as pool:
        ahead: Future[Parsed] | None = None
        for batch in batches:
            future = pool.submit(_parse, batch, export_date)
            if ahead is not None:
                yield ahead.result()
            ahead = future
        if ahead is not None:
            yield ahead.result()


def _parse(records: list[Record], export_date: dt.date) -> Parsed:
    return [(record, hashlib.sha256(record.raw).hexdigest(), parse(record, export_date)) for record in records]


def _note_of(record: Record) -> str | None:
    key = key_of(record)
    return key.split("/", 1)[0] if key else None


def _file_done(store: Store, run: Any, name: str, trailer: tuple[int | None, int | None], problem: str | None) -> None:
    """Record the file's trailer (or why it could not be read) and move the checkpoint past it."""
    order = list(FILES)
    last = name == order[-1]
    with store.begin() as conn:
        _checkpoint(conn, run.id, name)
        if conn.scalar(select(files.c.file).where(files.c.run_id == run.id, files.c.file == name)) is None:
            count, line = trailer
            conn.execute(
                insert(files).values(run_id=run.id, file=name, trailer_count=count, trailer_line=line, problem=problem)
            )
        conn.execute(
            update(runs)
            .where(runs.c.id == run.id)
            .values(file=name if last else order[order.index(name) + 1], line=END if last else 0)
        )


def _checkpoint(conn: Connection, run_id: int, name: str) -> Any:
    """The run's row, locked; Rejected when another process moved the run past this point."""
    row = conn.execute(select(runs).where(runs.c.id == run_id).with_for_update()).one()
    if row.status == "done" or (row.file is not None and list(FILES).index(row.file) > list(FILES).index(name)):
        raise Rejected(f"migration run {run_id} is past {name}: it is done, or being run elsewhere", where="run")
    return row


@dataclass
class _Batch:
    """What one batch decided: the verdict rows, and the documents to send."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    documents: list[tuple[str, str, BaseModel]] = field(default_factory=list)


def _judge(store: Store, run: Any, name: str, judged: Parsed, export_date: dt.date) -> None:
    kind, records = KINDS[name], [record for record, _, _ in judged]
    with store.begin() as conn:
        row = _checkpoint(conn, run.id, name)
        if row.file == name and records[0].line <= row.line:
            raise Rejected(
                f"migration run {run.id} is past line {records[0].line}: it is being run elsewhere", where="run"
            )
        if row.export_date is None:
            conn.execute(update(runs).where(runs.c.id == run.id).values(export_date=export_date))
        decided = _Batch()
        # what stands after the trailer is junk, never a duplicate of a record
        keys = [None if record.after_trailer else _key(result) for record, _, result in judged]
        firsts = _earlier(conn, run.id, name, {key for key in keys if key})
        parsed: Parsed = []
        for (record, digest, result), key in zip(judged, keys, strict=True):
            first = firsts.get(key) if key else None
            if first is not None:
                same_as, first_digest = first
                if first_digest == digest:
                    decided.rows.append(_row(run.id, record, key, digest, "duplicate", None, same_as))
                else:
                    reason = f"conflict: the key of line {same_as} with other content"
                    decided.rows.append(_row(run.id, record, key, digest, "rejected", reason, same_as, raw=True))
                continue
            if key:
                firsts[key] = (record.line, digest)
            parsed.append((record, digest, result))
        if kind == "note":
            _notes(conn, run, parsed, decided)
        else:
            _records(conn, run, kind, parsed, decided)
        insert_many(conn, verdicts, VERDICT_COLUMNS, decided.rows)
        if not run.dry_run:
            _send(conn, run, decided.documents)
        conn.execute(update(runs).where(runs.c.id == run.id).values(file=name, line=records[-1].line))


def _key(result: tuple[str, Any] | Rejection) -> str | None:
    return result.key if isinstance(result, Rejection) else result[0]


def _row(
    run_id: int,
    record: Record,
    key: str | None,
    digest: str,
    verdict: str,
    reason: str | None,
    same_as: int | None = None,
    document: str | None = None,
    *,
    raw: bool = False,
) -> tuple[Any, ...]:
    return (
        run_id,
        record.file,
        record.line,
        key,
        digest,
        verdict,
        reason,
        same_as,
        document,
        record.raw if raw else None,
    )


def _earlier(conn: Connection, run_id: int, name: str, keys: set[str]) -> dict[str, tuple[int, str]]:
    """Of each key, the line and digest of its first record in this run's file so far."""
    found: dict[str, tuple[int, str]] = {}
    if not keys:
        return found
    for key, line, digest in conn.execute(
        select(verdicts.c.key, verdicts.c.line, verdicts.c.digest)
        .where(verdicts.c.run_id == run_id, verdicts.c.file == name, among(conn, verdicts.c.key, sorted(keys)))
        .order_by(verdicts.c.line.desc())
    ):
        found[key] = (line, digest)  # the lowest line last: it stands
    return found


def _records(conn: Connection, run: Any, kind: str, parsed: list[Any], decided: _Batch) -> None:
    """Persons, cases and decisions: each record is one document."""
    needs = {
        "case": ("person", "PERS.DAT", lambda document: document.personnummer.digits, "its person is not migrated"),
        "decision": ("case", "ARENDE.DAT", lambda document: document.case_number, "its case is not migrated"),
    }.get(kind)
    present = set()
    if needs is not None:
        wanted = {needs[2](result[1]) for _, _, result in parsed if not isinstance(result, Rejection)}
        present = _migrated(conn, run, needs[0], needs[1], wanted)
    for record, digest, result in parsed:
        if isinstance(result, Rejection):
            decided.rows.append(_row(run.id, record, result.key, digest, "rejected", result.reason, raw=True))
            continue
        key, document = result
        if needs is not None and needs[2](document) not in present:
            decided.rows.append(_row(run.id, record, key, digest, "rejected", needs[3], raw=True))
            continue
        identity = _identity(kind, document)
        decided.rows.append(_row(run.id, record, key, digest, "migrated", None, document=identity))
        decided.documents.append((kind, identity, document))


def _notes(conn: Connection, run: Any, parsed: list[Any], decided: _Batch) -> None:
    """Journal lines: the lines of a note (standing together) joined in continuation order."""
    groups: list[list[tuple[Record, str, str, NoteLine]]] = []
    for record, digest, result in parsed:
        if isinstance(result, Rejection):
            decided.rows.append(_row(run.id, record, result.key, digest, "rejected", result.reason, raw=True))
            continue
        key, line = result
        if groups and groups[-1][0][3].note_id == line.note_id:
            groups[-1].append((record, digest, key, line))
        else:
            groups.append([(record, digest, key, line)])
    present = _migrated(conn, run, "case", "ARENDE.DAT", {group[0][3].case_number for group in groups})
    for group in groups:
        group.sort(key=lambda item: item[3].continuation)
        first = group[0][3]
        if first.case_number not in present:
            for record, digest, key, _ in group:
                decided.rows.append(_row(run.id, record, key, digest, "rejected", "its case is not migrated", raw=True))
            continue
        numbers = [line.continuation for _, _, _, line in group]
        gap = numbers != list(range(1, len(numbers) + 1))
        warning = f"continuations {', '.join(f'{n:03d}' for n in numbers)}: joined with a gap" if gap else None
        note = LegacyJournalNote(
            note_id=first.note_id,
            case_number=first.case_number,
            written=first.written,
            signature=first.signature,
            text=" ".join(line.text for _, _, _, line in group).strip(),
            lines=len(group),
            gap=gap,
        )
        for record, digest, key, _ in group:
            decided.rows.append(_row(run.id, record, key, digest, "migrated", warning, document=first.note_id))
        decided.documents.append(("note", first.note_id, note))


def _identity(kind: str, document: Any) -> str:
    if isinstance(document, LegacyPerson):
        return document.personnummer.digits
    if isinstance(document, LegacyCase):
        return document.case_number
    if isinstance(document, LegacyDecision):
        return document.decision_id
    raise TypeError(kind)


def _migrated(conn: Connection, run: Any, kind: str, file: str, keys: set[str]) -> set[str]:
    """The keys of `kind` that are migrated: in this run (a dry run's too), or sent by an earlier one."""
    if not keys:
        return set()
    wanted = sorted(keys)
    here = conn.scalars(
        select(verdicts.c.document).where(
            verdicts.c.run_id == run.id,
            verdicts.c.file == file,
            verdicts.c.verdict == "migrated",
            among(conn, verdicts.c.document, wanted),
        )
    )
    before = conn.scalars(
        select(sent.c.key).where(sent.c.tenant == run.tenant, sent.c.kind == kind, among(conn, sent.c.key, wanted))
    )
    return set(here) | set(before)


def _send(conn: Connection, run: Any, documents: list[tuple[str, str, BaseModel]]) -> None:
    """Send each document the case system does not have as it is now; note what was sent."""
    if not documents:
        return
    digests = {
        (kind, key): hashlib.sha256(document.model_dump_json().encode()).hexdigest()
        for kind, key, document in documents
    }
    known = {
        (kind, key): digest
        for kind, key, digest in conn.execute(
            select(sent.c.kind, sent.c.key, sent.c.digest).where(  # by the whole key: a scan of the tenant grows
                sent.c.tenant == run.tenant,
                sent.c.kind.in_(sorted({kind for kind, _ in digests})),
                among(conn, sent.c.key, sorted({key for _, key in digests})),
            )
        )
        if (kind, key) in digests
    }
    outgoing = []
    new: list[tuple[str, str, str, str, str, int]] = []
    for kind, key, document in documents:
        digest = digests[(kind, key)]
        if known.get((kind, key)) == digest:
            continue
        envelope = Envelope(
            id=str(uuid.uuid5(NAMESPACE, f"{run.tenant}/{run.id}/{kind}/{key}/{digest}")),
            type=TYPES[kind],
            tenant=run.tenant,
            source="casehub/migration",
            payload=document.model_dump(mode="json"),
        )
        outgoing.append((envelope, CASE_SYSTEM))
        if (kind, key) in known:
            conn.execute(
                update(sent)
                .where(sent.c.tenant == run.tenant, sent.c.kind == kind, sent.c.key == key)
                .values(digest=digest, message_id=envelope.id, run_id=run.id)
            )
        else:
            new.append((run.tenant, kind, key, digest, envelope.id, run.id))
        known[(kind, key)] = digest
    insert_many(conn, sent, ("tenant", "kind", "key", "digest", "message_id", "run_id"), new)
    messages.send_many(conn, outgoing)
