"""A tenant whose payroll configuration is incomplete: the approved run's file is held as the hub's
own fault (a misconfigured dead letter for IT operations), not sent and not refused."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from adapters.channels import installed
from adapters.memory import MemoryChannel
from core.store.tables import dead_letters
from flows.payroll import run
from flows.payroll.configuration import payroll_settings
from sandbox.case_system import CaseSystem
from schemas.money import Period
from tests.conftest import TENANT, TOKEN, TOKEN_ENV, one_tenant, wait_for
from tests.flows.test_payroll import decide

pytestmark = pytest.mark.parametrize("runtime", ["embedded"], indirect=True)


@pytest.fixture
def hub_config(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return one_tenant(
        {"id": "lon", "kind": "payroll", "channel": {"type": "rest", "url": "http://lon.invalid", "token_env": "UNSET"}}
    )


def test_a_missing_organisation_number_holds_the_file_for_it_operations(make_hub):
    channel = MemoryChannel()
    with installed({"lon": channel}):
        hub = make_hub()
        decide(hub, CaseSystem("http://unused", TOKEN, TENANT).assignment("A-1"))
        run_id = run.draft(hub.store, TENANT, Period(2026, 3), payroll_settings(hub.config.tenant(TENANT)), by="u:x")
        run.approve(hub.store, run_id, by="user:granskare")
        hub.relay.nudge()

        def held():
            with hub.store.begin() as conn:
                return conn.execute(select(dead_letters.c.kind, dead_letters.c.reason)).all()

        wait_for(held, what="the file held")
        [(kind, reason)] = held()
        assert kind == "misconfigured" and "payroll.organisation_number" in reason
        assert channel.sent == []
