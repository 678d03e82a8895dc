"""The message store: one SQLAlchemy engine on SQLite (embedded) or PostgreSQL (at scale)."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Unpack

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Engine,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    exc,
    insert,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS = Path(__file__).parent / "migrations"
"""Alembic's environment, and core's own revisions in its `versions` folder."""
_migration_folders: list[Path] = [MIGRATIONS / "versions"]


def migrations_in(folder: Path) -> None:
    """Add a flow's folder of revisions: a flow owns its tables and their migrations. The revisions
    of core and of every flow form one history, each revising the newest before it."""
    if folder not in _migration_folders:
        _migration_folders.append(folder)


def alembic_config() -> Config:
    """Alembic's configuration: the environment in core, the revisions of core and of every flow
    whose tables are imported (`flows.load()` imports them all)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(str(folder) for folder in _migration_folders))
    return config


CONNECT_TIMEOUT = 5
"""Seconds to wait for PostgreSQL to accept a connection: a store that is down is noticed soon."""
SQLITE_WAIT = 30
"""Seconds a transaction on SQLite waits for the write lock before it is an outage (`is_outage`)."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def is_outage(error: BaseException) -> bool:
    """True when `error` says the store cannot be reached now (down, connection lost, pool exhausted,
    locked): worth trying again later, unlike an error in the data."""
    outages = (
        exc.OperationalError,
        exc.InterfaceError,
        exc.TimeoutError,  # through SQLAlchemy
        psycopg.OperationalError,
        psycopg.InterfaceError,
        sqlite3.OperationalError,
    )  # the driver's own (COPY)
    return isinstance(error, outages) or (isinstance(error, exc.DBAPIError) and error.connection_invalidated)


class Store:
    """The hub's durable state. `begin()` is one transaction; every write goes through one.
    Errors never quote the statement's parameters (personal data)."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self._writers: threading.Lock | None = None
        if url.startswith("sqlite"):
            self.engine: Engine = create_engine(
                url, connect_args={"timeout": SQLITE_WAIT, "check_same_thread": False}, hide_parameters=True
            )
            self._writers = threading.Lock()
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin_immediate)
        else:
            self.engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                hide_parameters=True,
                connect_args={"connect_timeout": CONNECT_TIMEOUT},
            )

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def reachable(self) -> bool:
        """True when the store answers a query now."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except exc.DBAPIError:
            return False

    def begin(self) -> AbstractContextManager[Connection]:
        """A transaction: `with store.begin() as conn: ...` commits on success, rolls back on error.
        On SQLite every transaction holds the file's one write lock, and the process's writers
        queue for it here, each woken as the one before ends: left to SQLite's own wait, each polls
        the lock with sleeps of up to 100 ms, and under a burst of short writes (a provider's
        backlog delivered as it comes back) a request waited over a second."""
        return self.engine.begin() if self._writers is None else self._queued(self._writers)

    @contextmanager
    def _queued(self, writers: threading.Lock) -> Iterator[Connection]:
        if not writers.acquire(timeout=SQLITE_WAIT):  # as SQLite says when its own wait runs out
            raise exc.OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))
        try:
            with self.engine.begin() as conn:
                yield conn
        finally:
            writers.release()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only connection for long reads (streaming a month of visits) beside writing
        transactions: on SQLite it takes no write lock, so writers go on while it reads."""
        with self.engine.connect() as conn:
            yield conn.execution_options(read_only=True)

    def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        config = alembic_config()
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            try:
                command.upgrade(config, "head")
            except KeyError as missing:  # a revision revises one in a folder not added
                raise RuntimeError(
                    f"migration {missing} is not found: load every flow (flows.load()) before migrating, "
                    "so that each flow's tables add their migrations"
                ) from None

    def dispose(self) -> None:
        self.engine.dispose()


def insert_ignore(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, object]] | Mapping[str, object],
    *,
    returning: Sequence[ColumnElement[Any]] | None = None,
) -> CursorResult[Unpack[tuple[Any, ...]]]:
    """INSERT that skips rows whose key already exists; with `returning`, yields the inserted rows only."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing()
    if returning is not None:
        statement = statement.returning(*returning)
    return conn.execute(statement, rows)


def insert_many(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Many rows at once, each a tuple of `columns`' values: COPY on PostgreSQL (several times faster
    than batched INSERTs), an executemany INSERT elsewhere. The columns' types convert the values on
    both paths (money to öre, for one)."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    convert = [table.c[name].type.bind_processor(conn.dialect) for name in columns]
    with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([value if to is None else to(value) for to, value in zip(convert, row, strict=True)])


def among(conn: Connection, column: ColumnElement[Any], values: Sequence[object]) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL `column = ANY(array)`, one parameter however many values
    (a list of thousands of parameters took longer to build and parse than the query to run)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")  # a new file's; core.retention's purge frees pages
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_WAIT * 1000}")
    cursor.close()


def _sqlite_begin_immediate(conn: Connection) -> None:
    # Writers take the lock at BEGIN, so two transactions never deadlock upgrading a read lock.
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("read_only") else "BEGIN IMMEDIATE")


__all__ = ["Store", "among", "insert", "insert_ignore", "is_outage", "utcnow"]
