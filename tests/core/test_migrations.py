"""The hand-written migrations build exactly the tables the code defines, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

import flows
from core.messages import document_digest
from core.store import Store, alembic_config
from core.store.tables import ledger, messages, metadata, outbox
from flows.reimbursement.tables import lines
from schemas.envelope import Envelope
from tests.conftest import PG_ADMIN_URL, need

flows.load()  # every flow's steps, jobs and tables

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated(request, tmp_path):
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
        store.migrate()
    else:
        store = Store(request.getfixturevalue("postgres_database"))  # migrated by the fixture
    yield store
    store.dispose()


def test_the_migrations_match_the_table_definitions(migrated):
    with migrated.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert differences == []


@pytest.fixture(params=["sqlite", "postgresql"])
def store_at(request, tmp_path):
    """An empty store on each kind, and the step that migrates it up (or `down`) to a revision."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.db'}"
    else:
        need("PostgreSQL", ("127.0.0.1", 5432))
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        name = f"casehub_migration_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    store = Store(url)
    config = alembic_config()

    def to(revision: str, *, down: bool = False) -> Store:
        with store.engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
        return store

    yield to
    store.dispose()
    if request.param == "postgresql":
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_money_written_before_0008_becomes_exact_whole_ore(store_at):
    store = store_at("0007")
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO reimbursement_runs (id, tenant, period, kind, status, lock_at, created_at, "
            "created_by, visits, paid) VALUES (1, '0125', '2026-03', 'regular', 'approved', "
            "'2026-04-07 21:59:00+00', '2026-04-08 08:00:00+00', 'u', 1, 1)"
        )
        conn.exec_driver_sql(
            "INSERT INTO reimbursement_lines VALUES (1, '5560360793', '194107086995', 'omsorg', "
            "'day', 420.00, 56, 0, 392.67)"
        )
        conn.exec_driver_sql(
            "INSERT INTO reimbursement_adjustments (run_id, provider_org, customer, category, band, "
            "rate, minutes, by, why, at) VALUES (1, '5560360793', '194107086995', 'omsorg', 'day', "
            "420.00, 5, 'u', 'why', '2026-04-08 08:00:00+00')"
        )
    store_at("head")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT rate, amount FROM reimbursement_lines").one() == (42000, 39267)
        assert conn.exec_driver_sql("SELECT rate FROM reimbursement_adjustments").scalar() == 42000
        assert conn.scalar(select(lines.c.amount)) == Decimal("392.67")


def test_0021_moves_purged_messages_to_tombstones_and_keeps_every_digest_as_bytes(store_at):
    store = store_at("0020")
    envelope = Envelope(id="e-old", type="case.event_recorded", tenant="0125", source="case-system", payload={"a": 1})
    with store.engine.begin() as conn:
        insert = (
            "INSERT INTO messages (id, tenant, type, source, direction, stored_at, raw, envelope, purged_at, "
            "raw_sha256, document_sha256) VALUES (%s)"
        )
        conn.execute(  # stored before 0019 wrote digests
            sa.text(insert % ":id, '0125', :type, 'case-system', 'in', :at, :raw, :envelope, NULL, NULL, NULL"),
            {
                "id": "e-old",
                "type": envelope.type,
                "at": NOW,
                "raw": b"as received",
                "envelope": envelope.model_dump_json(),
            },
        )
        conn.execute(  # purged under 0019
            sa.text(insert % "'e-gone', '0125', 't', 's', 'in', :at, NULL, NULL, :at, :raw, :document"),
            {"at": NOW, "raw": "ab" * 32, "document": "cd" * 32},
        )
    store_at("0021")  # the fixture takes the same store on up
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT raw_sha256, document_sha256 FROM messages").one() == (
            hashlib.sha256(b"as received").digest(),
            document_digest(envelope),
        )
        gone = conn.exec_driver_sql("SELECT id, raw_sha256, document_sha256 FROM message_tombstones").one()
        assert tuple(gone) == ("e-gone", bytes.fromhex("ab" * 32), bytes.fromhex("cd" * 32))
    store_at("0020", down=True)
    with store.engine.connect() as conn:
        assert sorted(conn.exec_driver_sql("SELECT id, raw_sha256, purged_at IS NULL FROM messages").all()) == [
            ("e-gone", "ab" * 32, False),
            ("e-old", hashlib.sha256(b"as received").hexdigest(), True),
        ]


def test_0024_writes_every_message_and_tombstone_to_the_ledger_and_back(store_at):
    store = store_at("0023")
    columns = "id, tenant, type, stored_at, raw_sha256, document_sha256"
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO messages (source, direction, raw, envelope, {columns}) "
                "VALUES ('case-system', 'in', NULL, '{}', 'e-kept', '0125', 't', :at, :raw, :document)"
            ),
            {"at": NOW, "raw": b"r" * 32, "document": b"d" * 32},
        )
        conn.execute(
            sa.text(
                f"INSERT INTO message_tombstones ({columns}, purged_at) "
                "VALUES ('e-gone', '0125', 't', :at, :raw, NULL, :purged)"
            ),
            {"at": NOW, "raw": b"g" * 32, "purged": NOW + dt.timedelta(days=400)},
        )
    store_at("0024")
    with store.engine.connect() as conn:
        entries = {row.id: row for row in conn.execute(select(ledger))}
        assert set(conn.scalars(select(messages.c.id))) == {"e-kept"}
    assert (entries["e-kept"].raw_sha256, entries["e-kept"].document_sha256) == (b"r" * 32, b"d" * 32)
    assert entries["e-kept"].purged_at is None and entries["e-kept"].stored_at == NOW
    assert (entries["e-gone"].raw_sha256, entries["e-gone"].purged_at) == (b"g" * 32, NOW + dt.timedelta(days=400))
    store_at("0023", down=True)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT id, raw_sha256, document_sha256 FROM messages").all() == [
            ("e-kept", b"r" * 32, b"d" * 32)
        ]
        assert conn.exec_driver_sql("SELECT id, raw_sha256 FROM message_tombstones").all() == [("e-gone", b"g" * 32)]


def test_a_new_revision_sees_every_flows_tables_and_goes_to_its_owners_folder(tmp_path, monkeypatch):
    """`casehub db revision` on a store at the newest migration finds nothing to change: the
    environment sees core's tables and every flow's (one it did not see would be dropped)."""
    from typer.testing import CliRunner

    from cli import app

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    config = tmp_path / "casehub.toml"
    config.write_text('[[tenants]]\ncode = "0125"\nname = "Ekerö kommun"\n')
    monkeypatch.setenv("CASEHUB_DATABASE_URL", url)
    monkeypatch.setenv("CASEHUB_CONFIG", str(config))
    Store(url).migrate()
    folder = Path(flows.__file__).parent / "visits" / "migrations"
    before = set(folder.iterdir())
    root = Path(flows.__file__).parent.parent
    newest = max(
        int(path.name[:4]) for part in ("core", "flows") for path in (root / part).glob("**/migrations/**/0*.py")
    )
    try:
        done = CliRunner().invoke(app, ["db", "revision", "-m", "nothing", "--flow", "visits"], catch_exceptions=False)
        assert done.exit_code == 0, done.output
        [written] = set(folder.iterdir()) - before
        assert written.name == f"{newest + 1:04d}_nothing.py"
        text = written.read_text()
        assert f"Revises: {newest:04d}" in text
        assert "op." not in text  # no table created, dropped or altered
    finally:
        for extra in set(folder.iterdir()) - before:
            extra.unlink() if extra.is_file() else shutil.rmtree(extra)


def test_migrating_without_the_flows_loaded_says_what_is_missing(tmp_path):
    code = (
        "from core.store import Store\n"
        f"Store('sqlite:///{tmp_path / 'hub.db'}').migrate()\n"  # no flow's tables imported: their revisions unknown
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1 and "load every flow (flows.load()) before migrating" in done.stderr


def test_0023_leaves_the_feeds_entries_out_of_outbox_sent(store_at):
    """A partial index's condition is not among what compare_metadata compares: read it back."""
    store = store_at("head")
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            definition = conn.exec_driver_sql("SELECT pg_get_indexdef('outbox_sent'::regclass)").scalar()
        else:
            definition = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'outbox_sent'").scalar()
    assert "'step:%'" in definition and "sent_at IS NOT NULL" in definition


def test_0025_keeps_the_purges_recorded_before_it_without_their_messages_time_and_back(store_at):
    store = store_at("0024")
    recorded = sa.text("INSERT INTO retention_purges (tenant, started_at, by, counts) VALUES ('0125', :at, 'x', '{}')")
    with store.engine.begin() as conn:
        conn.execute(recorded, {"at": NOW})
    store_at("0025")
    with store.engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT tenant, message_days FROM retention_purges").all() == [("0125", None)]
        conn.exec_driver_sql("UPDATE retention_purges SET message_days = 365")
    store_at("0024", down=True)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT * FROM retention_purges").one().tenant == "0125"
        assert "message_days" not in conn.exec_driver_sql("SELECT * FROM retention_purges").keys()


def test_0026_gives_each_delivery_its_messages_time_of_storing_and_back(store_at):
    store = store_at("0025")
    with store.engine.begin() as conn:
        entry = (
            "INSERT INTO message_ledger (id, tenant, type, stored_at, raw_sha256) VALUES (:id, '0125', 't', :at, :r)"
        )
        conn.execute(sa.text(entry), {"id": "e-1", "at": NOW, "r": b"r" * 32})
        delivery = sa.text(
            "INSERT INTO outbox (tenant, destination, message_id, created_at) VALUES ('0125', 'step:echo', :id, :at)"
        )
        conn.execute(delivery, {"id": "e-1", "at": NOW + dt.timedelta(days=40)})  # run again later
        conn.execute(delivery, {"id": "e-unknown", "at": NOW + dt.timedelta(hours=2)})
    store_at("0026")
    with store.engine.connect() as conn:
        assert dict(conn.execute(select(outbox.c.message_id, outbox.c.stored_at)).all()) == {
            "e-1": NOW,
            "e-unknown": NOW + dt.timedelta(hours=2),
        }
    store_at("0025", down=True)
    with store.engine.connect() as conn:
        assert "stored_at" not in conn.exec_driver_sql("SELECT * FROM outbox").keys()
