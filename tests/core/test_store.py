"""The store on SQLite: a process's writers queue for the file's one write lock, a writer that
waits too long is an outage, and a failed transaction lets the next writer in."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

import core.store
from core.store import Store, is_outage


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    with store.begin() as conn:
        conn.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
    yield store
    store.dispose()


def count(store: Store) -> int:
    with store.reading() as conn:
        return int(conn.execute(text("SELECT n FROM counter")).scalar_one())


def test_writers_in_many_threads_each_commit_once(store):
    def write() -> None:
        for _ in range(50):
            with store.begin() as conn:
                n = conn.execute(text("SELECT n FROM counter")).scalar_one()
                conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert count(store) == 400  # no update lost, none refused as locked


def test_a_failed_transaction_lets_the_next_writer_in(store, monkeypatch):
    monkeypatch.setattr(core.store, "SQLITE_WAIT", 2)
    with pytest.raises(ZeroDivisionError), store.begin() as conn:
        conn.execute(text("UPDATE counter SET n = 7"))
        1 / 0  # noqa: B018
    with store.begin() as conn:  # not kept waiting by the one that failed
        conn.execute(text("UPDATE counter SET n = n + 1"))
    assert count(store) == 1


def test_a_writer_kept_waiting_past_its_time_is_an_outage_and_the_holder_commits(store, monkeypatch):
    monkeypatch.setattr(core.store, "SQLITE_WAIT", 0.5)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.begin() as conn:
            conn.execute(text("UPDATE counter SET n = 5"))
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    with pytest.raises(Exception) as waited:
        with store.begin():
            pass
    assert is_outage(waited.value)  # tried again later, as when SQLite's own wait runs out
    release.set()
    holder.join(10)
    assert count(store) == 5
