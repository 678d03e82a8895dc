"""What a migration run did, per file: read = migrated + rejected + duplicates, always, and whether
the trailer's count agrees; the rejected records with their reasons, the duplicates with the line
they repeat, the migrated keys (the contract's JSON), and a quarantine file per source file with
each rejected record's line, reason and original bytes. Keys hold personnummer: a report is
personal data, and reading one is audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from adapters.legacy_export import FILES
from core import audit
from core.store import Store
from flows.migration.run import KINDS
from flows.migration.tables import files, runs, verdicts


def summary(conn: Connection, run_id: int) -> dict[str, Any]:
    """The run and its counts per file, and whether it reconciles. Counts only: nothing to audit."""
    run = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    if run is None:
        raise LookupError(f"no migration run {run_id}")
    counts: dict[str, dict[str, int]] = {name: {"migrated": 0, "rejected": 0, "duplicate": 0} for name in FILES}
    for name, verdict, count in conn.execute(
        select(verdicts.c.file, verdicts.c.verdict, func.count())
        .where(verdicts.c.run_id == run_id)
        .group_by(verdicts.c.file, verdicts.c.verdict)
    ):
        counts.setdefault(name, {"migrated": 0, "rejected": 0, "duplicate": 0})[verdict] = count
    read = {row.file: row for row in conn.execute(select(files).where(files.c.run_id == run_id))}
    after_trailer = dict(
        conn.execute(
            select(verdicts.c.file, func.count())
            .join(files, (files.c.run_id == verdicts.c.run_id) & (files.c.file == verdicts.c.file))
            .where(verdicts.c.run_id == run_id, verdicts.c.line > files.c.trailer_line)
            .group_by(verdicts.c.file)
        ).all()
    )
    per_file = {}
    for name, count in counts.items():
        total = count["migrated"] + count["rejected"] + count["duplicate"]
        trailer = read[name].trailer_count if name in read else None
        per_file[name] = {
            "read": total,
            "migrated": count["migrated"],
            "rejected": count["rejected"],
            "duplicates": count["duplicate"],
            "trailer_count": trailer,
            "trailer_ok": trailer == total - after_trailer.get(name, 0),
            "problem": read[name].problem if name in read else ("not read yet" if run.status != "done" else None),
        }
    return {
        "run": run_id,
        "tenant": run.tenant,
        "folder": run.folder,
        "dry_run": run.dry_run,
        "status": run.status,
        "files": per_file,
        "reconciles": run.status == "done" and all(f["trailer_ok"] and not f["problem"] for f in per_file.values()),
    }


def report(store: Store, run_id: int, *, by: str) -> dict[str, Any]:
    """The contract's JSON of a run (with `files` as in `summary`), the read audited as `by`."""
    with store.begin() as conn:
        found = summary(conn, run_id)
        rejected = [
            {"file": row.file, "line": row.line, "key": row.key, "reason": row.reason}
            for row in conn.execute(
                select(verdicts)
                .where(verdicts.c.run_id == run_id, verdicts.c.verdict == "rejected")
                .order_by(verdicts.c.file, verdicts.c.line)
            )
        ]
        duplicates = [
            {"file": row.file, "line": row.line, "same_as_line": row.same_as_line}
            for row in conn.execute(
                select(verdicts.c.file, verdicts.c.line, verdicts.c.same_as_line)
                .where(verdicts.c.run_id == run_id, verdicts.c.verdict == "duplicate")
                .order_by(verdicts.c.file, verdicts.c.line)
            )
        ]
        migrated: dict[str, list[str]] = {kind: [] for kind in KINDS.values()}
        for name, document in conn.execute(
            select(verdicts.c.file, verdicts.c.document)
            .where(verdicts.c.run_id == run_id, verdicts.c.verdict == "migrated")
            .distinct()
            .order_by(verdicts.c.file, verdicts.c.document)
        ):
            migrated[KINDS[name]].append(document)
        warnings = [
            {"file": row.file, "line": row.line, "key": row.key, "warning": row.reason}
            for row in conn.execute(
                select(verdicts)
                .where(verdicts.c.run_id == run_id, verdicts.c.verdict == "migrated", verdicts.c.reason.is_not(None))
                .order_by(verdicts.c.file, verdicts.c.line)
            )
        ]
        audit.record(conn, actor=by, action="migration.report", subject=f"migration-run:{run_id}")
    return found | {"rejected": rejected, "duplicates": duplicates, "warnings": warnings, "migrated": migrated}


def write_quarantine(store: Store, run_id: int, folder: Path) -> list[Path]:
    """A file per source file with rejected records: `line<TAB>reason<TAB>` and the original bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with store.begin() as conn:
        for name in FILES:
            rows = conn.execute(
                select(verdicts.c.line, verdicts.c.reason, verdicts.c.raw)
                .where(verdicts.c.run_id == run_id, verdicts.c.file == name, verdicts.c.verdict == "rejected")
                .order_by(verdicts.c.line)
            )
            path = folder / f"{name}.rejected"
            with path.open("wb") as target:
                for line, reason, raw in rows:
                    target.write(f"{line}\t{reason}\t".encode() + (raw or b"") + b"\r\n")
            written.append(path)
    return written
