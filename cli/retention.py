"""`casehub retention`: what the store would purge now and why, a purge now, the last purges, and
legal holds (core.retention)."""

from __future__ import annotations

import typer

from cli.common import build_hub, fail, new_table, open_store, out, whoami

app = typer.Typer(no_args_is_help=True, help="How long the store keeps each kind of record, and the purge")
TENANT = typer.Option(None, "--tenant", help="one tenant's kommunkod (default: every tenant)")
WHY = {
    "messages": "message_days after its deliveries, steps and dead letters were done",
    "dispatches": "dispatch_days after the delivery to a step was sent or the step was done",
    "dead_letters": "dead_letter_days after it was resolved (its bytes; the row stays)",
    "transfers": "transfer_days after the file went or came",
    "audit": "audit_days after the entry",
    "visit_versions": "period_months after the last run of the visits' period was approved",
}


def _tenants(config, code: str | None) -> list:
    chosen = [tenant for tenant in config.tenants if code in (None, tenant.code)]
    if not chosen:
        raise fail(f"no tenant {code} in the configuration")
    return chosen


@app.command("plan")
def retention_plan(tenant: str = TENANT) -> None:
    """What a purge would take now, per tenant and kind, with the policy that says so (no writes)."""
    import flows
    from core import retention

    flows.load()  # the retention section, and the flows' messages that are never purged while needed
    store, config = open_store()
    table = new_table("tenant", "kind", "would purge", "policy", "why")
    for found in _tenants(config, tenant):
        policy = retention.policy_of(found)
        for kind, count in retention.plan(store, found).items():
            field = retention.fields()[kind]
            table.add_row(found.code, kind, f"{count:,}", f"{field} = {getattr(policy, field)}", WHY.get(kind, ""))
    out.print(table)
    out.print("held records are counted by `retention run`; `retention holds` lists the holds in force")


@app.command("run")
def retention_run(tenant: str = TENANT) -> None:
    """Purge now what the policy says is past its time, in small batches."""
    from core import retention

    hub = build_hub()
    table = new_table("tenant", *retention.counted())
    try:
        for found in _tenants(hub.config, tenant):
            counts = retention.purge(hub.store, found, by=whoami())
            table.add_row(found.code, *(f"{counts.get(kind, 0):,}" for kind in retention.counted()))
    finally:
        hub.stop()
    out.print(table)


@app.command("status")
def retention_status(limit: int = typer.Option(20, min=1, help="purges to show")) -> None:
    """The last purges: when, by whom, and what each took per kind."""
    from core import retention

    store, _ = open_store()
    table = new_table("id", "tenant", "started", "finished", "by", *retention.counted())
    for purge in retention.last_purges(store, limit):
        counts = purge["counts"] or {}
        finished = f"{purge['finished_at']:%Y-%m-%d %H:%M:%S}" if purge["finished_at"] else "not finished"
        table.add_row(
            str(purge["id"]),
            purge["tenant"],
            f"{purge['started_at']:%Y-%m-%d %H:%M:%S}",
            finished,
            purge["by"],
            *(f"{counts.get(kind, 0):,}" if counts else "" for kind in retention.counted()),
        )
    out.print(table)


@app.command("hold")
def retention_hold(
    tenant: str = typer.Option(..., "--tenant", help="the tenant's kommunkod"),
    person: str = typer.Option(None, help="the person's personnummer (kept only as a key)"),
    case: str = typer.Option(None, help="a case reference, as it stands in the messages"),
    reason: str = typer.Option(..., help="why: the complaint, the court case"),
) -> None:
    """Keep a person's or a case's records from every purge until released (audited)."""
    from core import retention
    from core.errors import Rejected

    store, _ = open_store()
    try:
        with store.begin() as conn:
            hold_id = retention.hold(conn, tenant=tenant, person=person, case=case, reason=reason, by=whoami())
    except Rejected as error:
        raise fail(f"{error.where}: {error.reason}") from None
    out.print(f"hold {hold_id} in force for tenant {tenant}")


@app.command("release")
def retention_release(hold_id: int, tenant: str = typer.Option(..., "--tenant", help="the tenant's kommunkod")) -> None:
    """End a hold: the next purge takes what it kept, if the policy says so (audited)."""
    from core import retention
    from core.errors import Rejected

    store, _ = open_store()
    try:
        with store.begin() as conn:
            retention.release(conn, hold_id, tenant=tenant, by=whoami())
    except Rejected as error:
        raise fail(error.reason) from None
    out.print(f"hold {hold_id} released")


@app.command("holds")
def retention_holds(tenant: str = typer.Option(..., "--tenant", help="the tenant's kommunkod")) -> None:
    """The holds in force: what kind, since when, by whom and why (never the personnummer)."""
    from core import retention

    store, _ = open_store()
    with store.begin() as conn:
        found = retention.holds_in_force(conn, tenant)
    table = new_table("id", "kind", "subject", "since", "by", "reason")
    for hold in found:
        subject = hold["subject"] if hold["kind"] == "case" else "a person (by key)"
        table.add_row(
            str(hold["id"]), hold["kind"], subject, f"{hold['held_at']:%Y-%m-%d}", hold["held_by"], hold["reason"]
        )
    out.print(table)
