"""`make demo`: the hub on the embedded default (SQLite, in-process broker) with simulated partners.

Each flow adds its part here; the demo exits non-zero when anything did not come out as it should.
"""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

TENANT = "0125"  # Ekerö
TOKEN_ENV = "CASEHUB_TOKEN_0125_CASE_SYSTEM"

CONFIG = f"""\
[[tenants]]
code = "{TENANT}"
name = "Ekerö kommun"

[[tenants.partners]]
id = "case-system"
kind = "case_system"
token_env = "{TOKEN_ENV}"
"""


def run(*, workdir: Path, events: int, console: Console) -> bool:
    import flows  # noqa: F401  (registers the steps)
    from adapters.http_app import create_app
    from core import deadletters, redaction
    from core.runtime import Hub
    from core.settings import Settings
    from sandbox.case_system import CaseSystem
    from sandbox.server import LiveServer

    redaction.install()
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("casehub.db*"):
        old.unlink()
    config = workdir / "casehub.toml"
    config.write_text(CONFIG, encoding="utf-8")
    token = secrets.token_urlsafe(24)
    os.environ[TOKEN_ENV] = token
    settings = Settings(broker_url="memory://", database_url=f"sqlite:///{workdir / 'casehub.db'}", config=config)
    hub = Hub(settings)
    hub.store.migrate()
    hub.start(worker=True)
    checks: list[tuple[str, bool, str]] = []
    try:
        with LiveServer(create_app(hub)) as server:
            console.print(f"hub listening on {server.url} (SQLite {settings.database_url}, in-process broker)")
            case_system = CaseSystem(server.url, token, TENANT)
            sent = [case_system.event() for _ in range(events)]
            accepted = 0
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("case system sends events", total=events)
                for start in range(0, events, 50):
                    batch = sent[start:start + 50]
                    accepted += len(case_system.post(batch).json()["accepted"])
                    progress.advance(task, len(batch))
            again = case_system.post(sent[:50]).json()
            checks.append(("events accepted", accepted == events, f"{accepted} of {events}"))
            checks.append(("resent batch taken as duplicates", len(again["duplicates"]) == 50,
                           f"{len(again['duplicates'])} duplicates, {len(again['accepted'])} new"))

            bad = case_system.event()
            bad["payload"]["person"] = bad["payload"]["person"][:-1] + str((int(bad["payload"]["person"][-1]) + 1) % 10)
            refused = case_system.post(bad)
            checks.append(("bad personnummer refused at the door", refused.status_code == 422,
                           f"{refused.status_code} {refused.json().get('where')}: {refused.json().get('error')}"))

            receipts = _await_receipts(case_system, events)
            checks.append(("receipts on the case system's feed", receipts == events, f"{receipts} of {events}"))
        with hub.store.begin() as conn:
            letters = deadletters.listing(conn)
        checks.append(("dead letters", not letters, str(len(letters))))
    finally:
        hub.stop()

    table = Table("check", "result", "detail", title="casehub demo")
    for name, ok, detail in checks:
        table.add_row(name, "[green]ok[/]" if ok else "[red]FAILED[/]", detail)
    console.print(table)
    return all(ok for _, ok, _ in checks)


def _await_receipts(case_system, expected: int, timeout: float = 60.0) -> int:
    receipts = 0
    deadline = time.monotonic() + timeout
    while receipts < expected and time.monotonic() < deadline:
        got = case_system.read_feed()
        receipts += sum(1 for event in got if event["type"] == "hub.receipt")
        if not got:
            time.sleep(0.1)
    return receipts
