"""The migration of a dirty Logica export (sandbox.legacy_export, every fault of the contract once):
each record's verdict and reason, the report that reconciles by construction, what reaches the case
system, a second run and a dry run that send nothing, and kill -9 at three points with resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from core.errors import Rejected
from core.store.tables import messages
from flows.migration import run
from flows.migration.report import report, write_quarantine
from flows.migration.tables import verdicts
from sandbox.legacy_export import dirty_export
from tests.conftest import TENANT

REASONS = {
    "invalid_check_digit": ("rejected", "check digit"),
    "impossible_date": ("rejected", "impossible"),
    "zero_personnummer": ("rejected", "000000-0000"),
    "zero_date": ("rejected", "missing opened date"),
    "identical_duplicate": ("duplicate", None),
    "conflict": ("rejected", "conflict"),
    "unknown_person": ("rejected", "its person is not migrated"),
    "unknown_case": ("rejected", "its case is not migrated"),
    "continuation_gap": ("migrated", "gap"),
    "continuation_out_of_order": ("migrated", None),
    "invalid_text": ("rejected", "not valid text"),
    "cut_short": ("rejected", "cut short"),
    "lower_case_code": ("migrated", None),
    "trailing_garbage": ("rejected", "after the trailer"),
    "closed_before_opened": ("rejected", "closed before opened"),
    "valid_to_before_valid_from": ("rejected", "valid to before valid from"),
    "hours_not_a_number": ("rejected", "hours are not a number"),
    "unknown_status": ("rejected", "unknown status"),
}


@pytest.fixture
def export(tmp_path):
    return dirty_export(tmp_path / "export")


def migrate(hub, folder: Path, *, dry_run: bool = False) -> int:
    run_id = run.start(hub.store, TENANT, folder, dry_run=dry_run, by="user:migrering")
    run.go(hub.store, run_id)
    return run_id


def legacy_sent(hub) -> list[dict]:
    with hub.store.begin() as conn:
        return [
            json.loads(text)
            for text in conn.scalars(select(messages.c.envelope).where(messages.c.type.like("legacy.%")))
        ]


def judged(hub, run_id: int) -> dict[tuple[str, int], tuple[str, str | None]]:
    with hub.store.begin() as conn:
        return {
            (row.file, row.line): (row.verdict, row.reason)
            for row in conn.execute(select(verdicts).where(verdicts.c.run_id == run_id))
        }


def test_every_fault_has_its_verdict_and_the_counts_reconcile(make_hub, export, tmp_path):
    hub = make_hub()
    run_id = migrate(hub, export.folder)
    found = judged(hub, run_id)
    assert {fault.kind for fault in export.faults} >= set(REASONS) | {"trailer_mismatch"}
    for fault in export.faults:
        if fault.kind == "trailer_mismatch":
            continue
        verdict, reason = found[(fault.file, fault.line)]
        expected, words = REASONS[fault.kind]
        assert verdict == expected, (fault, verdict, reason)
        assert (words is None and (expected != "migrated" or reason is None)) or (words in (reason or "")), (
            fault,
            reason,
        )
    done = report(hub.store, run_id, by="user:migrering")
    for name, counts in done["files"].items():
        assert counts["read"] == counts["migrated"] + counts["rejected"] + counts["duplicates"]
        assert counts["read"] == export.counts[name], name
    assert done["files"]["ARENDE.DAT"]["trailer_ok"] is False and done["files"]["PERS.DAT"]["trailer_ok"] is True
    assert done["files"]["JOURNAL.DAT"]["trailer_count"] is None  # cut short: no trailer
    assert done["reconciles"] is False
    assert {"file": "PERS.DAT", "line": 1, "same_as_line": 0} not in done["duplicates"]
    paths = write_quarantine(hub.store, run_id, tmp_path / "quarantine")
    quarantined = (tmp_path / "quarantine" / "PERS.DAT.rejected").read_bytes()
    assert len(paths) == 4 and quarantined.count(b"\r\n") == done["files"]["PERS.DAT"]["rejected"]

    sent = legacy_sent(hub)
    persons = {e["payload"]["personnummer"]: e["payload"] for e in sent if e["type"] == "legacy.person"}
    assert set(persons) == set(done["migrated"]["person"])
    assert export.centenarian in persons and export.coordination in persons
    for protected in export.protected:
        assert persons[protected]["protected_identity"] is True and persons[protected]["address"] is None
    assert len(sent) == sum(len(keys) for keys in done["migrated"].values())


def test_a_second_run_sends_nothing_and_a_dry_run_judges_alike_and_sends_nothing(make_hub, export):
    hub = make_hub()
    dry = migrate(hub, export.folder, dry_run=True)
    assert legacy_sent(hub) == []
    first = migrate(hub, export.folder)
    count = len(legacy_sent(hub))
    assert count > 0 and judged(hub, dry) == judged(hub, first)
    again = migrate(hub, export.folder)
    assert len(legacy_sent(hub)) == count and judged(hub, again) == judged(hub, first)


def test_a_record_changed_and_changed_back_is_sent_each_time(make_hub, export):
    """A person renamed in a later export, then renamed back: each run sends what changed, and the
    third run's message is a new one (not a clash with the first run's id)."""
    hub = make_hub()
    first = migrate(hub, export.folder)
    line = min(
        n for (name, n), (verdict, _) in judged(hub, first).items() if name == "PERS.DAT" and verdict == "migrated"
    )
    path = export.folder / "PERS.DAT"
    original = path.read_bytes()
    lines = original.split(b"\r\n")
    renamed = lines[line - 1][:13] + b"Q" + lines[line - 1][14:]  # column 14: the last name's first letter
    path.write_bytes(b"\r\n".join([*lines[: line - 1], renamed, *lines[line:]]))
    count = len(legacy_sent(hub))
    migrate(hub, export.folder)
    assert len(legacy_sent(hub)) == count + 1
    path.write_bytes(original)
    migrate(hub, export.folder)
    sent = legacy_sent(hub)
    assert len(sent) == count + 2 and len({envelope["id"] for envelope in sent}) == count + 2
    names = [
        e["payload"]["last_name"] for e in sent if e["type"] == "legacy.person" and e["payload"]["last_name"][0] == "Q"
    ]
    assert len(names) == 1


CHILD = """
import os, signal, sys
import flows
from core.store import Store
from core.errors import Rejected
from flows.migration import run
flows.load()
store, run_id, file, line = Store(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
run.BATCH = 5
judge = run._judge
def judge_then_die(store, row, name, judged, export_date):
    if name == file and judged[-1][0].line >= line:
        def die(*args):
            os.kill(os.getpid(), signal.SIGKILL)  # in the batch's transaction, before it commits
        run._send = die
    judge(store, row, name, judged, export_date)
run._judge = judge_then_die
run.go(store, run_id)
"""


@pytest.mark.parametrize("runtime", ["embedded"], indirect=True)
def test_kill_9_at_three_points_and_resume_sends_every_record_once(make_hub, export, runtime):
    hub = make_hub(worker=False)
    reference = make_reference(export)
    run_id = run.start(hub.store, TENANT, export.folder, dry_run=False, by="user:migrering")
    journal_last = export.counts["JOURNAL.DAT"] + 1
    for file, line in (
        ("ARENDE.DAT", 2),
        ("BESLUT.DAT", export.counts["BESLUT.DAT"] // 2),
        ("JOURNAL.DAT", journal_last),
    ):
        child = subprocess.run(
            [sys.executable, "-c", CHILD, runtime.database_url, str(run_id), file, str(line)],
            cwd=Path(__file__).parent.parent.parent,
            capture_output=True,
            text=True,
        )
        assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    run.go(hub.store, run_id)  # resume
    sent = legacy_sent(hub)
    ids = [envelope["id"] for envelope in sent]
    assert len(ids) == len(set(ids))
    done = report(hub.store, run_id, by="user:migrering")
    assert sum(len(keys) for keys in done["migrated"].values()) == len(sent) == reference
    for counts in done["files"].values():
        assert counts["read"] == counts["migrated"] + counts["rejected"] + counts["duplicates"]


def make_reference(export) -> int:
    """The documents an uninterrupted run sends, counted on a hub of its own."""
    from core.config import HubConfig
    from core.runtime import Hub
    from core.settings import Settings

    folder = export.folder.parent / "reference"
    folder.mkdir()
    hub = Hub(
        Settings(broker_url="memory://", database_url=f"sqlite:///{folder / 'hub.db'}"),
        HubConfig.model_validate({"tenants": [{"code": TENANT, "name": "x"}]}),
    )
    hub.store.migrate()
    try:
        migrate(hub, export.folder)
        return len(legacy_sent(hub))
    finally:
        hub.store.dispose()


def test_a_missing_file_and_a_bad_header_are_reported_and_a_run_cannot_be_run_twice_at_once(make_hub, export):
    hub = make_hub()
    (export.folder / "BESLUT.DAT").unlink()
    (export.folder / "JOURNAL.DAT").write_bytes(b"not a header\r\n")
    run_id = migrate(hub, export.folder)
    files = report(hub.store, run_id, by="user:migrering")["files"]
    assert files["BESLUT.DAT"]["problem"] == "the file is not in the folder"
    assert "not a header" in files["JOURNAL.DAT"]["problem"]
    assert files["PERS.DAT"]["problem"] is None and files["PERS.DAT"]["read"] == export.counts["PERS.DAT"]
    with pytest.raises(Rejected, match="being run elsewhere"):
        judged = run._parse([_first_record(export)], export.export_date)
        run._judge(hub.store, _row_of(hub, run_id), "PERS.DAT", judged, export.export_date)


def _row_of(hub, run_id: int):
    from flows.migration.tables import runs

    with hub.store.begin() as conn:
        return conn.execute(select(runs).where(runs.c.id == run_id)).one()


def _first_record(export):
    from adapters.legacy_export import ExportFile

    with ExportFile(export.folder / "PERS.DAT") as source:
        return next(iter(source))
