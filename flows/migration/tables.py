"""The migration flow's tables: the runs with their checkpoints, every record's verdict, and what
was ever sent to the case system (so that a second run over the same files sends nothing new)."""

from pathlib import Path

from sqlalchemy import Boolean, Column, Date, ForeignKey, Index, Integer, LargeBinary, String, Table, Text

from core.store import migrations_in
from core.store.tables import Serial, UtcDateTime, metadata

migrations_in(Path(__file__).parent / "migrations")

runs = Table(
    "migration_runs",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("tenant", String(4), nullable=False),
    Column("folder", Text, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("status", String(10), nullable=False, doc="running, done"),
    Column("export_date", Date, nullable=True),
    Column("file", String(12), nullable=True, doc="checkpoint: the file being read"),
    Column("line", Integer, nullable=False, doc="checkpoint: the last line of that file judged"),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("started_by", String(100), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
)

files = Table(
    "migration_files",
    metadata,
    Column("run_id", ForeignKey("migration_runs.id"), primary_key=True),
    Column("file", String(12), primary_key=True),
    Column("trailer_count", Integer, nullable=True, doc="None: the file has no trailer"),
    Column("trailer_line", Integer, nullable=True, doc="what stands after it is not counted by it"),
    Column("problem", Text, nullable=True, doc="the file as a whole could not be read (its header)"),
)

verdicts = Table(
    "migration_verdicts",
    metadata,
    Column("run_id", ForeignKey("migration_runs.id"), primary_key=True),
    Column("file", String(12), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("key", String(40), nullable=True, doc="the record's key as written"),
    Column("digest", String(64), nullable=False, doc="SHA-256 of the record's bytes"),
    Column("verdict", String(10), nullable=False, doc="migrated, rejected, duplicate"),
    Column("reason", Text, nullable=True, doc="why rejected (conflict: a conflict), or a warning"),
    Column("same_as_line", Integer, nullable=True, doc="a duplicate's or a conflict's earlier line"),
    Column("document", String(40), nullable=True, doc="the key of the document a migrated record went into"),
    Column("raw", LargeBinary, nullable=True, doc="a rejected record's original bytes, for the quarantine file"),
    Index("migration_verdicts_key", "run_id", "file", "key"),
    Index("migration_verdicts_document", "run_id", "file", "document", "verdict"),
)

sent = Table(
    "migration_sent",
    metadata,
    Column("tenant", String(4), primary_key=True),
    Column("kind", String(10), primary_key=True, doc="person, case, decision, note"),
    Column("key", String(40), primary_key=True),
    Column("digest", String(64), nullable=False, doc="SHA-256 of the document sent"),
    Column("message_id", String(64), nullable=False),
    Column("run_id", Integer, nullable=False),
)
