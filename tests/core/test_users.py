"""The console's users: argon2 hashes, roles, lockout after repeated failures, every login audited."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from core import users
from core.errors import Rejected
from core.store import Store
from core.store.tables import audit
from core.store.tables import users as table

PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    store.migrate()
    yield store
    store.dispose()


def _actions(store: Store) -> list[tuple[str, str]]:
    with store.begin() as conn:
        return [(row.actor, row.action) for row in conn.execute(select(audit).order_by(audit.c.id))]


def test_a_user_logs_in_with_their_password_only_and_the_hash_is_argon2(store):
    users.add(store, "anna", "review", PASSWORD, by="user:admin")
    with store.begin() as conn:
        stored = conn.scalar(select(table.c.password_hash))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert users.authenticate(store, "anna", PASSWORD, source="test") == users.User("anna", "review")
    assert users.authenticate(store, "anna", PASSWORD + "x", source="test") is None
    assert users.authenticate(store, "nobody", PASSWORD, source="test") is None
    assert _actions(store) == [
        ("user:admin", "user.add"),
        ("user:anna", "login"),
        ("user:anna", "login.failed"),
        ("user:nobody", "login.failed"),
    ]


def test_repeated_failures_lock_the_user_and_a_new_password_lifts_it(store):
    users.add(store, "bo", "operations", PASSWORD, by="user:admin")
    for _ in range(users.MAX_FAILURES):
        assert users.authenticate(store, "bo", "guess guess guess", source="test") is None
    assert users.authenticate(store, "bo", PASSWORD, source="test") is None  # locked, though right
    with store.begin() as conn:  # the lockout over
        conn.execute(update(table).values(locked_until=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)))
    assert users.authenticate(store, "bo", PASSWORD, source="test") is not None
    for _ in range(users.MAX_FAILURES):
        users.authenticate(store, "bo", "guess guess guess", source="test")
    users.set_password(store, "bo", "a new long password", by="user:admin")
    assert users.authenticate(store, "bo", "a new long password", source="test") is not None


def test_a_disabled_user_cannot_log_in_and_their_session_ends(store):
    users.add(store, "cia", "read", PASSWORD, by="user:admin")
    assert users.active(store, "cia") == users.User("cia", "read")
    users.disable(store, "cia", by="user:admin")
    assert users.active(store, "cia") is None
    assert users.authenticate(store, "cia", PASSWORD, source="test") is None


@pytest.mark.parametrize(
    ("name", "role", "password", "where"),
    [
        ("dan", "admin", PASSWORD, "role"),
        ("dan", "read", "short", "password"),
        ("", "read", PASSWORD, "name"),
        (" dan", "read", PASSWORD, "name"),
    ],
)
def test_a_bad_role_password_or_name_is_refused_with_its_field(store, name, role, password, where):
    with pytest.raises(Rejected) as refused:
        users.add(store, name, role, password, by="user:admin")
    assert refused.value.where == where


def test_a_name_is_taken_once(store):
    users.add(store, "eva", "read", PASSWORD, by="user:admin")
    with pytest.raises(Rejected, match="exists"):
        users.add(store, "eva", "operations", PASSWORD, by="user:admin")
