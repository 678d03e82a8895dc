"""`casehub migrate`: the legacy Logica export replayed into the case system until it reconciles."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cli.common import CONFIG, build_hub, err, fail, new_table, open_store, out, whoami

QUARANTINE = typer.Option(Path("var/migration"), help="where the quarantine files go, a folder per run")

app = typer.Typer(no_args_is_help=True, help="Migration of the Logica Omsorg export (plan, run, resume, report)")


@app.command("plan")
def migrate_plan(folder: Path) -> None:
    """Read the export's four files: headers, records per file, the trailer check. Writes nothing."""
    from adapters.legacy_export import FILES, ExportFile
    from core.errors import Rejected

    table = new_table("file", "export date", "system", "records", "trailer", "agrees", title=f"export in {folder}")
    for name in FILES:
        try:
            with ExportFile(folder / name) as export:
                count = sum(1 for _ in export)
                trailer = export.trailer_count
                header = export.header
        except FileNotFoundError:
            table.add_row(name, "", "", "", "", "the file is missing")
            continue
        except Rejected as error:
            table.add_row(name, "", "", "", "", f"{error}")
            continue
        agrees = "yes" if trailer == count else ("no trailer" if trailer is None else "NO")
        table.add_row(
            name,
            f"{header.export_date}",
            header.system,
            f"{count:,}",
            "" if trailer is None else f"{trailer:,}",
            agrees,
        )
    out.print(table)


@app.command("run")
def migrate_run(
    folder: Path,
    tenant: str = typer.Option(...),
    dry_run: bool = typer.Option(False, "--dry-run", help="judge and report, send nothing"),
    quarantine: Path = QUARANTINE,
) -> None:
    """Judge every record of the export and send the migrated ones to the case system."""
    from flows.migration import run

    hub = build_hub()
    if hub.config.tenant(tenant) is None:
        raise fail(f"--tenant: no tenant {tenant} in the configuration", CONFIG)
    run_id = run.start(hub.store, tenant, folder, dry_run=dry_run, by=whoami())
    out.print(f"migration run {run_id}" + (" (dry run)" if dry_run else ""))
    _go(hub, run_id, quarantine)


@app.command("resume")
def migrate_resume(run_id: int, quarantine: Path = QUARANTINE) -> None:
    """Go on with a run from its checkpoint (after it was stopped or killed)."""
    hub = build_hub()
    _go(hub, run_id, quarantine)


@app.command("report")
def migrate_report(run_id: int, as_json: bool = typer.Option(False, "--json", help="the contract's JSON")) -> None:
    """What a run did per file, and whether it reconciles (the read is audited: keys are personal data)."""
    from flows.migration.report import report

    store, _config = open_store()
    try:
        found = report(store, run_id, by=whoami())
    except LookupError as error:
        raise fail(str(error)) from None
    if as_json:
        out.print_json(json.dumps(found, ensure_ascii=False, default=str))
        return
    show(found)
    for item in found["rejected"][:50]:
        out.print(f"  rejected {item['file']} line {item['line']}: {item['reason']}", markup=False)
    if len(found["rejected"]) > 50:
        out.print(f"  ... {len(found['rejected']) - 50} more: --json")


@app.command("status")
def migrate_status() -> None:
    """The runs, newest first: state, checkpoint, whether each reconciles."""
    from sqlalchemy import select

    from flows.migration.report import summary
    from flows.migration.tables import runs

    store, _config = open_store()
    table = new_table("run", "tenant", "kind", "state", "checkpoint", "read", "reconciles", title="migration runs")
    with store.begin() as conn:
        for row in conn.execute(select(runs).order_by(runs.c.id.desc()).limit(20)):
            found = summary(conn, row.id)
            read = sum(f["read"] for f in found["files"].values())
            table.add_row(
                str(row.id),
                row.tenant,
                "dry run" if row.dry_run else "run",
                row.status,
                f"{row.file} line {row.line}" if row.status != "done" else "",
                f"{read:,}",
                "yes" if found["reconciles"] else "no",
            )
    out.print(table)


def _go(hub, run_id: int, quarantine: Path) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from core.errors import Rejected
    from flows.migration import run
    from flows.migration.report import report, write_quarantine

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    ) as progress:
        tasks: dict[str, int] = {}

        def told(name: str, judged: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=None, rate="")
            task = progress.tasks[tasks[name]]
            rate = judged / task.elapsed if task.elapsed else 0
            progress.update(tasks[name], completed=judged, rate=f"{rate:,.0f} records/s")

        try:
            run.go(hub.store, run_id, progress=told)
        except (Rejected, LookupError) as error:
            raise fail(str(error)) from None
    hub.relay.nudge()
    found = report(hub.store, run_id, by=whoami())
    written = write_quarantine(hub.store, run_id, quarantine / f"run-{run_id}")
    show(found)
    out.print(f"quarantine files in {written[0].parent}")


def show(found: dict) -> None:
    """The report for people: per file, and at once whether the run reconciles."""
    table = new_table(
        "file", "read", "migrated", "rejected", "duplicates", "trailer", "agrees", title=f"migration run {found['run']}"
    )
    for name, f in found["files"].items():
        agrees = "yes" if f["trailer_ok"] else (f["problem"] or ("no trailer" if f["trailer_count"] is None else "NO"))
        table.add_row(
            name,
            f"{f['read']:,}",
            f"{f['migrated']:,}",
            f"{f['rejected']:,}",
            f"{f['duplicates']:,}",
            "" if f["trailer_count"] is None else f"{f['trailer_count']:,}",
            agrees,
        )
    out.print(table)
    verdict = "RECONCILES" if found["reconciles"] else "DOES NOT RECONCILE"
    out.print(f"run {found['run']} ({'dry run, ' if found['dry_run'] else ''}{found['status']}): {verdict}")
