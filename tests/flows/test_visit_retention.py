"""Visit versions purged once no correction can reach them (flows.reimbursement.retention), on both
runtimes: a period's visits stay 13 months after its last run was approved, an open period's stay,
and a visit edited into a later period stays whole."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import func, insert, select

import flows.reimbursement.retention as visit_retention
from core import retention
from core.config import HubConfig
from flows.reimbursement.tables import runs
from flows.visits.tables import visits
from flows.visits.versions import store as store_visits
from schemas.api import VISIT_EXAMPLE
from schemas.identity import STOCKHOLM, generate_personnummer
from schemas.visits import Visit
from tests.conftest import TENANT

RNG = random.Random(16)


def visit(visit_id: str, day: str, version: int = 1) -> Visit:
    start = dt.datetime.fromisoformat(f"{day}T08:00:00").replace(tzinfo=STOCKHOLM)
    return Visit.model_validate(
        VISIT_EXAMPLE
        | {
            "visit_id": visit_id,
            "version": version,
            "customer_pnr": generate_personnummer(RNG).digits,
            "planned_start": start.isoformat(),
            "planned_end": (start + dt.timedelta(minutes=30)).isoformat(),
            "actual_start": start.isoformat(),
            "actual_end": (start + dt.timedelta(minutes=30)).isoformat(),
        }
    )


def approved(conn, period: str, at: str) -> None:
    when = dt.datetime.fromisoformat(at).replace(tzinfo=dt.UTC)
    conn.execute(
        insert(runs).values(
            tenant=TENANT,
            period=period,
            kind="regular",
            status="approved",
            lock_at=when,
            created_at=when,
            created_by="user:a",
            approved_at=when,
            approved_by="user:b",
            visits=1,
            paid=1,
        )  # fmt: skip
    )


def left(hub) -> set[tuple[str, int]]:
    with hub.store.begin() as conn:
        return {(row.visit_id, row.version) for row in conn.execute(select(visits.c.visit_id, visits.c.version))}


def test_visits_go_13_months_after_their_periods_last_approval_and_not_before(make_hub):
    hub = make_hub(worker=False)
    stored = [
        visit("V-JAN", "2025-01-15"),
        visit("V-JAN-EDITED", "2025-01-20"),
        visit("V-JAN-EDITED", "2025-03-03", version=2),  # moved into March, a period still open
        visit("V-FEB", "2025-02-14"),
        visit("V-MAR", "2025-03-10"),
    ]
    with hub.store.begin() as conn:
        store_visits(conn, tenant=TENANT, vendor="appen", accepted=stored, rejected=[], raw=b"{}", channel="push")
        approved(conn, "2025-01", "2025-02-10T09:00:00")
        approved(conn, "2025-01", "2025-06-02T09:00:00")  # a correction: the window starts again
        approved(conn, "2025-02", "2025-09-01T09:00:00")  # approved late: its window ends 2026-10-01
    tenant = hub.config.tenants[0]
    at = dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC)  # January's last approval + 13 months = 2026-07-02

    assert retention.plan(hub.store, tenant, now=at)["visit_versions"] == 0
    assert retention.purge(hub.store, tenant, by="test", now=at)["visit_versions"] == 0
    later = at + dt.timedelta(days=2)
    assert retention.plan(hub.store, tenant, now=later)["visit_versions"] == 1
    assert retention.purge(hub.store, tenant, by="test", now=later)["visit_versions"] == 1
    assert left(hub) == {("V-JAN-EDITED", 1), ("V-JAN-EDITED", 2), ("V-FEB", 1), ("V-MAR", 1)}

    # February goes 13 months after its approval; March has no run, so it and what is after it stay
    much_later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert retention.purge(hub.store, tenant, by="test", now=much_later)["visit_versions"] == 1
    assert left(hub) == {("V-JAN-EDITED", 1), ("V-JAN-EDITED", 2), ("V-MAR", 1)}
    with hub.store.begin() as conn:
        assert conn.scalar(select(func.count()).select_from(visits)) == 3


def test_a_policy_shorter_than_the_correction_window_is_refused():
    with pytest.raises(
        ValueError, match=r"retention.period_months: 12 months would purge the visits of a period that a correction"
    ):
        HubConfig.model_validate({"tenants": [{"code": TENANT, "name": "E", "retention": {"period_months": 12}}]})


def test_small_batches_take_the_same_versions_however_the_starts_fall(make_hub, monkeypatch):
    """Batches of two: more versions starting at one moment than a batch holds, and a visit's
    versions in different batches, one of them edited into a period still open."""
    monkeypatch.setattr(visit_retention, "BATCH", 2)
    hub = make_hub(worker=False)
    stored = [
        *(visit(f"V-SAME-{n}", "2025-01-15") for n in range(5)),
        visit("V-TWICE", "2025-01-10"),
        visit("V-TWICE", "2025-01-25", version=2),
        visit("V-EDITED", "2025-01-05"),
        visit("V-EDITED", "2025-01-20", version=2),
        visit("V-EDITED", "2025-03-03", version=3),
        visit("V-FEB", "2025-02-14"),
    ]
    with hub.store.begin() as conn:
        store_visits(conn, tenant=TENANT, vendor="appen", accepted=stored, rejected=[], raw=b"{}", channel="push")
        approved(conn, "2025-01", "2025-02-10T09:00:00")
        approved(conn, "2025-02", "2025-03-10T09:00:00")
    tenant = hub.config.tenants[0]
    at = dt.datetime(2026, 4, 12, tzinfo=dt.UTC)  # January's and February's windows over, March open

    assert retention.plan(hub.store, tenant, now=at)["visit_versions"] == 8
    assert retention.purge(hub.store, tenant, by="test", now=at)["visit_versions"] == 8
    assert left(hub) == {("V-EDITED", 1), ("V-EDITED", 2), ("V-EDITED", 3)}


def test_more_versions_than_a_batch_at_the_last_start_are_all_taken(make_hub, monkeypatch):
    monkeypatch.setattr(visit_retention, "BATCH", 2)
    hub = make_hub(worker=False)
    with hub.store.begin() as conn:
        stored = [visit(f"V-LAST-{n}", "2025-01-20") for n in range(3)]
        store_visits(conn, tenant=TENANT, vendor="appen", accepted=stored, rejected=[], raw=b"{}", channel="push")
        approved(conn, "2025-01", "2025-02-10T09:00:00")
    tenant = hub.config.tenants[0]
    at = dt.datetime(2026, 3, 12, tzinfo=dt.UTC)

    assert retention.plan(hub.store, tenant, now=at)["visit_versions"] == 3
    assert retention.purge(hub.store, tenant, by="test", now=at)["visit_versions"] == 3
    assert left(hub) == set()
