"""The `casehub` command: what operations types, with the exit codes scripts rely on."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cli import app
from core import deadletters
from core.store import Store
from core.store.tables import audit, messages, outbox
from sandbox.case_system import CaseSystem
from tests.conftest import TENANT, TOKEN

CONFIG = """
[[tenants]]
code = "0125"
name = "Ekerö kommun"

[[tenants.partners]]
id = "case-system"
kind = "case_system"
token_env = "CASEHUB_TEST_TOKEN_0125"
"""


@pytest.fixture
def cli(tmp_path, monkeypatch):
    config = tmp_path / "casehub.toml"
    config.write_text(CONFIG)
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    monkeypatch.setenv("CASEHUB_DATABASE_URL", url)
    monkeypatch.setenv("CASEHUB_CONFIG", str(config))
    monkeypatch.setenv("CASEHUB_BROKER_URL", "memory://")
    monkeypatch.setenv("CASEHUB_TEST_TOKEN_0125", TOKEN)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    assert run("db", "upgrade").exit_code == 0
    run.store = Store(url)
    run.config = config
    yield run
    run.store.dispose()


def test_dead_letters_list_show_and_replay(cli):
    event = CaseSystem("http://unused", TOKEN, TENANT).event() | {"tenant": "0138"}
    with cli.store.begin() as conn:
        letter = deadletters.record(
            conn,
            step=deadletters.INBOUND,
            kind="rejected",
            reason="tenant: unknown tenant 0138",
            raw=json.dumps(event).encode(),
        )

    listed = cli("dead-letters", "list")
    assert listed.exit_code == 0 and "unknown tenant 0138" in listed.output
    shown = cli("dead-letters", "show", str(letter))
    assert shown.exit_code == 0 and event["id"] in shown.output

    still_bad = cli("dead-letters", "replay", str(letter))
    assert still_bad.exit_code == 1 and "unknown tenant 0138" in still_bad.output

    cli.config.write_text(CONFIG + '\n[[tenants]]\ncode = "0138"\nname = "Tyresö kommun"\n')  # the fix
    replayed = cli("dead-letters", "replay", str(letter))
    assert replayed.exit_code == 0, replayed.output
    with cli.store.begin() as conn:
        assert conn.scalar(select(messages.c.tenant).where(messages.c.id == event["id"])) == "0138"
        assert conn.scalar(select(outbox.c.destination).where(outbox.c.message_id == event["id"])) == "step:echo"
        assert deadletters.show(conn, letter)["status"] == "replayed"
    assert "unknown tenant" not in cli("dead-letters", "list").output
    assert cli("dead-letters", "replay", "999").exit_code == 1


def test_messages_show_is_audited_and_search_lists(cli):
    from core.config import load
    from core.intake import envelopes_from_json
    from core.messages import accept

    event = CaseSystem("http://unused", TOKEN, TENANT).event()
    with cli.store.begin() as conn:
        accept(
            conn, envelopes_from_json(json.dumps(event).encode(), load(cli.config), sender="case_system", max_batch=1)
        )
    shown = cli("messages", "show", event["id"])
    assert shown.exit_code == 0 and event["payload"]["person"] in shown.output
    with cli.store.begin() as conn:
        entry = conn.execute(select(audit)).one()
    assert (entry.action, entry.subject) == ("message.read", f"message:{event['id']}")
    assert entry.actor.startswith("user:")
    assert event["payload"]["person"] not in (entry.detail or "")

    trail = cli("audit", "list", "--subject", f"message:{event['id']}")
    assert trail.exit_code == 0 and "message.read" in trail.output

    found = cli("messages", "search", "--tenant", TENANT)
    assert found.exit_code == 0 and event["id"][:8] in found.output
    assert cli("messages", "show", "no-such-id").exit_code == 1


def test_config_check_names_each_problem_and_exits_3(tmp_path, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[tenants]]\ncode = "125"\nname = "x"\n[[tenants.partners]]\nid = "cs"\nkind = "fax"\n')
    result = CliRunner().invoke(app, ["config", "check", str(bad)])
    assert result.exit_code == 3
    assert "tenants[0].code: String should match pattern" in result.output
    assert "tenants[0].partners[0].kind: Input should be" in result.output

    missing_token = tmp_path / "token.toml"
    missing_token.write_text(CONFIG)
    monkeypatch.delenv("CASEHUB_TEST_TOKEN_0125", raising=False)
    result = CliRunner().invoke(app, ["config", "check", str(missing_token)])
    assert result.exit_code == 3
    assert "environment variable CASEHUB_TEST_TOKEN_0125 is not set" in result.output

    monkeypatch.setenv("CASEHUB_TEST_TOKEN_0125", "x")
    assert CliRunner().invoke(app, ["config", "check", str(missing_token)]).exit_code == 0
    assert CliRunner().invoke(app, ["config", "check", str(tmp_path / "nope.toml")]).exit_code == 3


def test_a_broken_configuration_stops_every_command_with_exit_3(cli):
    cli.config.write_text("[[tenants]]\ncode = ")
    result = cli("dead-letters", "list")
    assert result.exit_code == 3 and "not valid TOML" in result.output


def test_schemas_export_writes_every_document(tmp_path):
    result = CliRunner().invoke(app, ["schemas", "export", str(tmp_path / "out")])
    assert result.exit_code == 0
    written = {p.name: json.loads(p.read_text()) for p in (tmp_path / "out").iterdir()}
    assert {"envelope.schema.json", "case.event_recorded.schema.json", "hub.receipt.schema.json"} <= set(written)
    assert written["envelope.schema.json"]["properties"]["tenant"]["type"] == "string"
    person = written["case.event_recorded.schema.json"]["properties"]["person"]
    assert person["type"] == "string" and "pattern" in person


def test_config_check_validates_providers_and_their_channels(tmp_path, monkeypatch):
    monkeypatch.setenv("CASEHUB_TEST_TOKEN_0125", "x")
    monkeypatch.setenv("CASEHUB_TEST_KEY", str(tmp_path / "no-such-key"))
    bad = tmp_path / "providers.toml"
    bad.write_text(
        CONFIG
        + """
[[tenants.partners]]
id = "no-channel"
kind = "provider"
organisation_number = "5560360793"

[[tenants.partners]]
id = "fax-ab"
kind = "provider"
organisation_number = "5560360793"
channel = { type = "fax", number = "08-123" }

[[tenants.partners]]
id = "sftp-ab"
kind = "provider"
organisation_number = "5560360794"
channel = { type = "sftp", host = "h", username = "u", private_key_env = "CASEHUB_TEST_KEY", host_key = "not a key" }

[[tenants.partners]]
id = "rest-ab"
kind = "provider"
organisation_number = "5560360793"
channel = { type = "rest", url = "ftp:/x", token_env = "CASEHUB_TEST_UNSET" }
"""
    )
    result = CliRunner().invoke(app, ["config", "check", str(bad)])
    assert result.exit_code == 3
    lines = result.output
    assert "tenants[0].partners[1]: a provider needs its organisation_number and channel" in lines
    assert "tenants[0].partners[2].channel" in lines and "fax" in lines
    assert "tenants[0].partners[3].organisation_number: wrong check digit" in lines
    assert "tenants[0].partners[3].channel.sftp.host_key: String should match pattern" in lines
    assert "tenants[0].partners[4].channel.rest.url" in lines


def test_config_check_validates_each_flows_section_and_names_a_table_no_flow_owns(tmp_path, monkeypatch):
    monkeypatch.setenv("CASEHUB_TEST_TOKEN_0125", "x")
    monkeypatch.setenv("CASEHUB_TEST_OUT", "y")
    provider = """
[[tenants.partners]]
id = "rest-ab"
kind = "provider"
organisation_number = "5560360793"
channel = { type = "rest", url = "https://rest-ab.example", token_env = "CASEHUB_TEST_OUT" }
"""
    good = tmp_path / "good.toml"
    good.write_text(
        CONFIG
        + provider
        + "[tenants.partners.orders]\nack_deadline_hours = 2\n"
        + "[tenants.reimbursement]\nmax_duration_hours = 5\n"
    )
    assert CliRunner().invoke(app, ["config", "check", str(good)]).output.strip().endswith("ok")
    from core.config import load
    from flows.orders.configuration import order_settings
    from flows.reimbursement.configuration import rules_of

    config = load(good)
    partner = config.partner("0125", "rest-ab")
    assert order_settings(partner).ack_deadline_hours == 2 and order_settings(partner).reminder_interval.seconds == 7200
    assert order_settings(config.partner("0125", "case-system")).ack_deadline_hours == 24  # the default
    assert rules_of(config.tenant("0125")).max_duration_hours == 5

    bad = tmp_path / "bad.toml"
    bad.write_text(
        CONFIG
        + provider
        + "[tenants.partners.orders]\nack_deadline_hours = -1\n"
        + "[tenants.reimbursment]\nrounding_minutes = 5\n"
    )
    result = CliRunner().invoke(app, ["config", "check", str(bad)])
    assert result.exit_code == 3
    assert "tenants[0].partners[1]: orders.ack_deadline_hours: Input should be greater than 0" in result.output
    bad.write_text(CONFIG + provider + "[tenants.reimbursment]\nrounding_minutes = 5\n")
    result = CliRunner().invoke(app, ["config", "check", str(bad)])
    assert result.exit_code == 3
    assert (
        "tenants[0].reimbursment: not a setting, nor a flow's section (payroll, reimbursement, retention, schedules)"
        in result.output
    )


def test_orders_list_show_and_resend(cli):
    from core.store import utcnow
    from core.store.tables import messages, outbox
    from flows.orders.tables import orders

    with cli.store.begin() as conn:
        conn.execute(
            orders.insert().values(
                tenant=TENANT,
                order_id="ORD-7",
                provider="omsorg-ab",
                case_ref="ÄO-1",
                kind="new",
                version=1,
                message_id="m-7",
                delivered_version=1,
                state="overdue",
                reason=None,
                updated_at=utcnow(),
                ack_due_at=utcnow(),
            )
        )
    listed = cli("orders", "list", "--state", "overdue")
    assert listed.exit_code == 0 and "ORD-7" in listed.output and "overdue" in listed.output
    assert "ORD-7" not in cli("orders", "list", "--state", "accepted").output
    shown = cli("orders", "show", "ORD-7", "--tenant", TENANT)
    assert shown.exit_code == 0 and '"provider": "omsorg-ab"' in shown.output
    assert '"version": 1,' in shown.output  # a number is printed as a number
    purged = cli("orders", "resend", "ORD-7", "--tenant", TENANT)  # its message is not in the store
    assert purged.exit_code == 1 and "message m-7: its bytes are gone" in purged.output
    with cli.store.begin() as conn:
        conn.execute(
            messages.insert().values(
                id="m-7",
                tenant=TENANT,
                type="order.new",
                source="test",
                direction="out",
                stored_at=utcnow(),
                envelope="{}",
            )
        )
    resent = cli("orders", "resend", "ORD-7", "--tenant", TENANT)
    assert resent.exit_code == 0 and "orders.remind" in resent.output
    with cli.store.begin() as conn:
        assert conn.scalar(select(outbox.c.destination).where(outbox.c.message_id == "m-7")) == "step:orders.remind"
        assert conn.execute(select(audit).where(audit.c.action == "order.resend")).one().subject == "order:ORD-7"
    assert cli("orders", "show", "ORD-8", "--tenant", TENANT).exit_code == 1


def test_reimbursement_run_review_adjust_approve_and_show(cli, monkeypatch):
    import datetime as dt
    import random

    from core import messages as stored
    from core.store import utcnow
    from flows.orders.tables import orders
    from flows.visits.versions import store as store_visits
    from schemas.envelope import Envelope
    from schemas.identity import generate_organisation_number, generate_personnummer
    from schemas.visits import Visit

    org = generate_organisation_number(random.Random(61)).digits
    person, stranger = (generate_personnummer(random.Random(seed)).digits for seed in (62, 63))
    cli.config.write_text(
        CONFIG
        + f"""
[[tenants.partners]]
id = "omsorg-ab"
kind = "provider"
organisation_number = "{org}"
channel = {{ type = "rest", url = "http://127.0.0.1:9", token_env = "CASEHUB_TEST_TOKEN_0125" }}
"""
    )
    order = Envelope.model_validate(
        CaseSystem("http://unused", TOKEN, TENANT).order(
            org, person=person, order_id="ORD-1", double_staffing=True, service_hours="8.00"
        )
    )
    cet = dt.timezone(dt.timedelta(hours=1))

    def visit(number, day, start, minutes, customer=person, **flags):
        begins = dt.datetime(2026, 3, day, *start, tzinfo=cet)
        return Visit(
            visit_id=f"V-{number}",
            version=1,
            provider_org=org,
            customer_pnr=customer,
            employee_id="E1",
            actual_start=begins,
            actual_end=begins + dt.timedelta(minutes=minutes),
            confirmation=flags.pop("confirmation", "nfc"),
            services=["HT-OMS"],
            approved=True,
            **flags,
        )

    with cli.store.begin() as conn:
        stored.accept(conn, [(order, None)])
        conn.execute(
            orders.insert().values(
                tenant=TENANT,
                order_id="ORD-1",
                provider="omsorg-ab",
                case_ref="ÄO-1",
                kind="new",
                version=1,
                message_id=order.id,
                state_version=1,
                state_message_id=order.id,
                delivered_version=1,
                state="accepted",
                updated_at=utcnow(),
            )
        )
        store_visits(
            conn,
            tenant=TENANT,
            vendor="vendor",
            rejected=[],
            raw=b"{}",
            channel="push",
            accepted=[
                visit(1, 2, (8, 0), 30),  # omsorg day, 210.00
                visit(2, 3, (9, 0), 30, declined=True),  # high: declined
                visit(3, 4, (9, 0), 30, customer=stranger),  # high: no order
                visit(4, 5, (9, 0), 30, confirmation="manual", manual_reason="tag broken"),
            ],
        )  # low, 210.00
    assert (
        cli(
            "reimbursement", "lock", "--tenant", TENANT, "--period", "2026-03", "--at", "2099-01-01T00:00+00:00"
        ).exit_code
        == 0
    )

    drafted = cli("reimbursement", "run", "--tenant", TENANT, "--period", "2026-03")
    assert drafted.exit_code == 0 and "4 visits, 2 paid" in drafted.output and "420.00" in drafted.output
    high = cli("reimbursement", "review", "1", "--level", "high")
    assert high.exit_code == 0 and "declined" in high.output and "no_order" in high.output
    assert "manual" not in high.output and person not in high.output and stranger not in high.output
    everything = cli("reimbursement", "review", "1").output
    assert everything.index("no_order") < everything.index("manual")  # the highest level first
    assert cli("reimbursement", "review", "1", "--level", "urgent").exit_code == 1

    key = ["--provider", org, "--customer", person, "--category", "omsorg", "--band", "day", "--rate", "420.00"]
    adjusted = cli("reimbursement", "adjust", "1", *key, "--minutes", "13", "--why", "visit on paper")
    assert adjusted.exit_code == 0 and "511.00" in adjusted.output  # (30 + 30 + 13) min x 420.00 / 60
    approved = cli("reimbursement", "approve", "1")
    assert approved.exit_code == 0 and f"{org} approved, 511.00 kr" in approved.output
    shown = cli("reimbursement", "show", "1")
    assert shown.exit_code == 0 and "+13" in shown.output and f"{person[:8]}-****" in shown.output
    refused = cli("reimbursement", "adjust", "1", *key, "--minutes", "5", "--why", "late")
    assert refused.exit_code == 1 and "approved run never changes" in refused.output
    with cli.store.begin() as conn:
        actions = set(conn.scalars(select(audit.c.action)))
    assert {
        "reimbursement.draft",
        "reimbursement.review",
        "reimbursement.adjust",
        "reimbursement.approve",
        "reimbursement.read",
    } <= actions

    # the basis as data: masked for anyone, in full only for the tenant's personal_data_readers
    as_json = json.loads(cli("reimbursement", "show", "1", "--format", "json").output)
    assert as_json["totals"] == [{"provider_org": org, "lines": 1, "minutes": 73, "amount": "511.00"}]
    assert [line["customer"] for line in as_json["lines"]] == [f"{person[:8]}-****"]
    assert as_json["run"]["lock_at"] == "2099-01-01T01:00:00+01:00"
    as_csv = cli("reimbursement", "show", "1", "--format", "csv").output.splitlines()
    assert as_csv[0] == "period;provider_org;customer;category;band;rate;minutes;adjusted_minutes;amount"
    assert as_csv[1] == f"2026-03;{org};{person[:8]}-****;omsorg;day;420.00;60;13;511.00"
    refused = cli("reimbursement", "show", "1", "--format", "json", "--personnummer", "full")
    assert refused.exit_code == 1 and "may not see personnummer in full" in refused.output
    from cli.common import whoami

    readers = f'personal_data_readers = ["{whoami()}"]\n'
    cli.config.write_text(
        cli.config.read_text().replace('name = "Ekerö kommun"\n', f'name = "Ekerö kommun"\n{readers}')
    )
    full = json.loads(cli("reimbursement", "show", "1", "--format", "json", "--personnummer", "full").output)
    assert [line["customer"] for line in full["lines"]] == [person]
    findings = cli("reimbursement", "review", "1", "--format", "csv", "--personnummer", "full").output.splitlines()
    assert findings[0] == "provider_org;visit_id;version;customer;code;paid;paid_minutes"
    assert any(f";{stranger};no_order;" in line for line in findings)
    assert "─" not in cli("reimbursement", "review", "1").output  # piped: no box drawing
    with cli.store.begin() as conn:
        details = set(
            conn.scalars(
                select(audit.c.detail).where(audit.c.action.in_(["reimbursement.read", "reimbursement.review"]))
            )
        )
    assert "lines, personnummer in full" in details and "level low and above, personnummer in full" in details


def test_lists_say_how_many_more_there_are_and_how_to_page(cli):
    """No list is cut without saying so: below each page, how many in all and the next --offset."""
    with cli.store.begin() as conn:
        for n in range(25):
            deadletters.record(
                conn, step=deadletters.INBOUND, kind="rejected", reason=f"reason {n}", raw=b"x" if n else b"first"
            )
    first = cli("dead-letters", "list", "--limit", "10")
    assert first.exit_code == 0
    assert "dead letters 1-10 of 25; 15 more: --offset 10" in first.output
    assert "reason 24" in first.output and "reason 14" not in first.output  # newest first
    last = cli("dead-letters", "list", "--limit", "10", "--offset", "20")
    assert "dead letters 21-25 of 25" in last.output and "more" not in last.output and "reason 0" in last.output
    assert "no dead letters from offset 30, 25 in all" in cli("dead-letters", "list", "--offset", "30").output
    assert cli("dead-letters", "list", "--limit", "0").exit_code == 2
    for command in (["messages", "search"], ["audit", "list"], ["transfers", "list"], ["orders", "list"]):
        listed = cli(*command, "--limit", "1")
        assert listed.exit_code == 0 and (" of " in listed.output or " in all" in listed.output), command
    assert "audit entries 1-1 of 1\n" in cli("audit", "list", "--limit", "1").output  # the read above
    assert "audit entries 1-1 of 2; 1 more: --offset 1" in cli("audit", "list", "--limit", "1").output


def test_visits_status_and_rounds_named_by_tenant_and_vendor(cli):
    cli.config.write_text(
        CONFIG
        + """
[[tenants.partners]]
id = "pusher"
kind = "visit_vendor"
token_env = "CASEHUB_TEST_TOKEN_0125"
"""
    )
    shown = cli("visits", "status", "--tenant", TENANT, "--period", "2026-03")
    assert shown.exit_code == 0 and "pusher" in shown.output and "push" in shown.output
    assert cli("visits", "status", "--tenant", "9999", "--period", "2026-03").exit_code == 3
    no_channel = cli("visits", "poll", "--tenant", TENANT, "--vendor", "pusher")
    assert no_channel.exit_code == 3 and "pusher has no rest channel to poll" in no_channel.output
    assert cli("visits", "pickup", "--tenant", TENANT, "--vendor", "nobody").exit_code == 3


def test_transfers_list_shows_the_whole_sha256_when_wide(cli):
    import hashlib

    from core import transfers

    data = b"ersattning;2026-03\n"
    with cli.store.begin() as conn:
        receipt = transfers.Receipt.of("basis.csv", data, "sftp")
        transfers.record(conn, tenant=TENANT, partner="omsorg-ab", receipt=receipt, cause=None)
    whole = hashlib.sha256(data).hexdigest()
    narrow, wide = cli("transfers", "list"), cli("transfers", "list", "--wide")
    assert whole[:16] in narrow.output and whole not in narrow.output
    assert whole in wide.output


def test_commands_that_only_read_open_the_store_and_never_the_bus(cli, monkeypatch):
    def no_bus(*_args, **_kwargs):
        raise AssertionError("a command that only reads built the bus")

    monkeypatch.setattr("core.runtime.Bus", no_bus)
    monkeypatch.setenv("CASEHUB_BROKER_URL", "amqp://guest:guest@127.0.0.1:1/%2F")  # nothing listens there
    for command in (
        ["dead-letters", "list"],
        ["messages", "search"],
        ["orders", "list"],
        ["transfers", "list"],
        ["audit", "list"],
        ["visits", "status", "--tenant", TENANT, "--period", "2026-03"],
    ):
        assert cli(*command).exit_code == 0, command


def test_payroll_run_review_approve_show_and_deliver(cli):
    from core.store import utcnow
    from core.store.tables import audit, outbox
    from flows.payroll.intake import _assignment_row
    from flows.payroll.tables import assignments
    from schemas.payroll import AssignmentDecided

    decided = CaseSystem("http://unused", TOKEN, TENANT).assignment("A-1001", valid_from="2026-02-10")
    document = AssignmentDecided.model_validate(decided["payload"])
    with cli.store.begin() as conn:
        row = _assignment_row(TENANT, document) | {"message_id": decided["id"], "stored_at": utcnow()}
        conn.execute(assignments.insert().values(row))

    drafted = cli("payroll", "run", "--tenant", TENANT, "--period", "2026-02")
    assert drafted.exit_code == 0, drafted.output
    assert "payroll run 1: 0125 2026-02, draft" in drafted.output and "6650.00" in drafted.output
    assert "10327.86" in drafted.output  # 6 650.00 + 3 677.86
    reviewed = cli("payroll", "review", "1")
    recipient = document.recipient.personnummer.digits
    assert "Arvode familjehem A-1001" in reviewed.output and document.recipient.name in reviewed.output
    assert f"{recipient[:8]}-****" in reviewed.output and recipient not in reviewed.output
    approved = cli("payroll", "approve", "1")
    assert approved.exit_code == 0 and "pay code 3101 approved, 6650.00 kr" in approved.output
    assert cli("payroll", "approve", "1").exit_code == 1
    again = cli("payroll", "run", "--tenant", TENANT, "--period", "2026-02")
    assert again.exit_code == 1 and "2026-02 is paid (run 1)" in again.output
    assert "approved by" in cli("payroll", "show", "1").output
    deliveries = select(outbox.c.message_id).where(outbox.c.destination == "step:payroll.deliver")
    with cli.store.begin() as conn:
        at_approval = conn.scalars(deliveries).all()
    assert cli("payroll", "deliver", "1", "--tenant", TENANT).exit_code == 0
    with cli.store.begin() as conn:
        resent = conn.scalars(deliveries).all()  # once more, asked for by a message of its own
        assert len(at_approval) == 1 and len(resent) == 2 and at_approval[0] in resent
        actions = set(conn.scalars(select(audit.c.action).where(audit.c.subject == "payroll-run:1")))
    assert {"payroll.draft", "payroll.read", "payroll.approve", "payroll.resend"} <= actions


def test_migrate_plan_run_report_resume_and_status(cli, tmp_path):
    from sandbox.legacy_export import dirty_export

    export = dirty_export(tmp_path / "export")
    plan = cli("migrate", "plan", str(export.folder))
    assert plan.exit_code == 0 and "ARENDE.DAT" in plan.output and "NO" in plan.output  # its trailer disagrees
    quarantine = tmp_path / "quarantine"
    dry = cli("migrate", "run", str(export.folder), "--tenant", TENANT, "--dry-run", "--quarantine", str(quarantine))
    assert dry.exit_code == 0, dry.output
    assert "migration run 1 (dry run)" in dry.output and "DOES NOT RECONCILE" in dry.output
    assert (quarantine / "run-1" / "PERS.DAT.rejected").read_bytes().count(b"\r\n") == 4
    report = json.loads(cli("migrate", "report", "1", "--json").output)
    assert report["files"]["PERS.DAT"] | {"problem": None} == {
        "read": export.counts["PERS.DAT"],
        "migrated": 20,
        "rejected": 4,
        "duplicates": 1,
        "trailer_count": export.counts["PERS.DAT"],
        "trailer_ok": True,
        "problem": None,
    }
    assert cli("migrate", "resume", "1").exit_code == 0  # a run that is done: nothing to do, the report again
    status = cli("migrate", "status")
    assert status.exit_code == 0 and "dry run" in status.output and "done" in status.output
    assert cli("migrate", "report", "9").exit_code == 1
    with cli.store.begin() as conn:
        assert conn.scalar(select(func.count()).select_from(messages)) == 0  # a dry run sends nothing
        assert "migration.report" in set(conn.scalars(select(audit.c.action)))


def test_schedules_list_pause_resume_and_run_now(cli):
    listed = cli("schedules", "list")
    assert listed.exit_code == 0
    for job in ("orders.overdue", "orders.sftp_acknowledgements", "visits.files", "visits.poll"):
        assert job in listed.output
    assert cli("schedules", "pause", "visits.poll", "--tenant", TENANT).exit_code == 0
    assert "paused by user:" in cli("schedules", "list").output
    ran = cli("schedules", "run", "orders.overdue", "--tenant", TENANT)
    assert ran.exit_code == 0 and "ran for 0125" in ran.output
    listed = cli("schedules", "list").output
    assert "ok" in listed and "0" in listed  # its outcome and count: no order was overdue
    assert cli("schedules", "resume", "visits.poll", "--tenant", TENANT).exit_code == 0
    assert "paused by" not in cli("schedules", "list").output
    unknown = cli("schedules", "run", "visits.nothing", "--tenant", TENANT)
    assert unknown.exit_code == 1 and "no job 'visits.nothing'" in unknown.output
    assert cli("schedules", "pause", "visits.poll", "--tenant", "9999").exit_code == 1
    with cli.store.begin() as conn:
        actions = set(conn.scalars(select(audit.c.action).where(audit.c.action.like("schedule.%"))))
    assert actions == {"schedule.pause", "schedule.resume", "schedule.run"}


def test_config_check_refuses_a_schedule_of_no_job(tmp_path, monkeypatch):
    monkeypatch.setenv("CASEHUB_TEST_TOKEN_0125", "x")
    path = tmp_path / "hub.toml"
    path.write_text(CONFIG + '[tenants.schedules]\n"visits.pol" = "*/5 * * * *"\n')
    done = CliRunner().invoke(app, ["config", "check", str(path)])
    assert done.exit_code == 3 and "tenants[0].schedules.visits.pol: no such job" in done.output
    path.write_text(CONFIG + '[tenants.schedules]\n"visits.poll" = "*/5 * * * 8"\n')
    done = CliRunner().invoke(app, ["config", "check", str(path)])
    assert done.exit_code == 3 and "schedules.visits.poll: not a cron expression" in done.output


def test_users_add_passwd_and_disable(cli):
    added = CliRunner().invoke(app, ["users", "add", "anna", "--role", "review"], input="a long password\n" * 2)
    assert added.exit_code == 0, added.output
    again = CliRunner().invoke(app, ["users", "add", "anna", "--role", "read", "--password-stdin"], input="x" * 12)
    assert again.exit_code == 1 and "exists" in again.output
    weak = CliRunner().invoke(app, ["users", "add", "bo", "--role", "read", "--password-stdin"], input="short\n")
    assert weak.exit_code == 1 and "password" in weak.output
    changed = cli("users", "passwd", "anna", "--password-stdin")
    assert changed.exit_code == 1  # no input: an empty password is too short
    changed = CliRunner().invoke(app, ["users", "passwd", "anna", "--password-stdin"], input="another long one\n")
    assert changed.exit_code == 0
    assert cli("users", "disable", "anna").exit_code == 0
    assert cli("users", "disable", "anna").exit_code == 1
    from core import users

    assert users.authenticate(cli.store, "anna", "another long one", source="test") is None


def test_schedules_run_leaves_what_the_job_sent_to_the_running_hubs_relay(cli):
    """On the in-process broker only the serving process has a worker: `schedules run` in another
    process must not relay, or what the job put in the outbox would go to no one."""
    from core import messages as stored
    from core import scheduler
    from schemas.envelope import Envelope

    @scheduler.scheduled("test.sends")
    def sends(ctx, tenant) -> int:
        with ctx.store.begin() as conn:
            envelope = Envelope(type="test.echo", tenant=tenant.code, source="test", payload={})
            stored.send_many(conn, [(envelope, "step:echo")])
        return 1

    try:
        assert cli("schedules", "run", "test.sends", "--tenant", TENANT).exit_code == 0
    finally:
        scheduler._jobs.pop("test.sends")
    with cli.store.begin() as conn:
        assert conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))) == 1


def test_retention_plan_run_status_and_holds(cli):
    event = CaseSystem("http://unused", TOKEN, TENANT).event()
    cli.config.write_text(CONFIG + "\n[tenants.retention]\naudit_days = 1\n")
    planned = cli("retention", "plan")
    assert planned.exit_code == 0 and "audit" in planned.output and "message_days" in planned.output

    held = cli("retention", "hold", "--tenant", TENANT, "--person", event["payload"]["person"], "--reason", "JO")
    assert held.exit_code == 0 and "hold 1 in force" in held.output
    holds = cli("retention", "holds", "--tenant", TENANT)
    assert "a person (by key)" in holds.output and event["payload"]["person"] not in holds.output
    assert cli("retention", "hold", "--tenant", TENANT, "--reason", "JO").exit_code == 1  # neither person nor case
    mistyped = cli("retention", "hold", "--tenant", TENANT, "--person", "19410708699", "--reason", "JO")
    assert mistyped.exit_code == 1 and "person: not a personnummer" in mistyped.output
    assert cli("retention", "release", "1", "--tenant", TENANT).exit_code == 0
    assert cli("retention", "release", "1", "--tenant", TENANT).exit_code == 1  # no longer in force

    ran = cli("retention", "run")
    assert ran.exit_code == 0 and TENANT in ran.output, ran.output
    status = cli("retention", "status")
    assert status.exit_code == 0 and "user:" in status.output and "not finished" not in status.output

    cli.config.write_text(CONFIG + "\n[tenants.retention]\ndispatch_days = 3\n")
    refused = cli("config", "check", str(cli.config))
    assert refused.exit_code == 3 and "retention.dispatch_days: 3 days would forget" in refused.output
