"""`payroll.store`: every version of an assignment and of a stay report, kept as it arrived.

The same version twice (a repeat of the event, or a resend under another id) is taken once; a
version that comes again with other content is refused, naming the version: a version is never
changed after it was decided.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select

from core.consumer import StepContext
from core.errors import Rejected
from core.steps import step
from core.store import insert_ignore, utcnow
from flows.payroll.tables import assignments, stays
from schemas.payroll import AssignmentDecided, StayReported


@step("payroll.store", consumes=["assignment.decided", "stay.reported"])
def store_version(ctx: StepContext) -> None:
    document = ctx.document
    tenant = ctx.envelope.tenant
    if isinstance(document, AssignmentDecided):
        _keep(ctx, assignments, _assignment_row(tenant, document), f"assignment {document.assignment_id}")
    elif isinstance(document, StayReported):
        row = {
            "tenant": tenant,
            "assignment_id": document.assignment_id,
            "period": str(document.period),
            "version": document.version,
            "days": ",".join(str(day.day) for day in document.dates),
        }
        _keep(ctx, stays, row, f"the stays of {document.assignment_id} in {document.period}")


def _assignment_row(tenant: str, decided: AssignmentDecided) -> dict[str, Any]:
    components = decided.components
    return {
        "tenant": tenant,
        "assignment_id": decided.assignment_id,
        "version": decided.version,
        "kind": decided.kind,
        "employee_id": decided.recipient.employee_id,
        "recipient": decided.recipient.personnummer.digits,
        "recipient_name": decided.recipient.name,
        "cost_centre": decided.cost_centre,
        "valid_from": decided.valid_from,
        "valid_to": decided.valid_to,
        "arvode": components["arvode"].amount if "arvode" in components else None,
        "arvode_per": components["arvode"].per if "arvode" in components else None,
        "omkostnad": components["omkostnad"].amount if "omkostnad" in components else None,
        "omkostnad_per": components["omkostnad"].per if "omkostnad" in components else None,
    }


def _keep(ctx: StepContext, table: Table, row: dict[str, Any], what: str) -> None:
    stored = {**row, "message_id": ctx.envelope.id, "stored_at": utcnow()}
    if insert_ignore(ctx.conn, table, stored, returning=[table.c.version]).first() is not None:
        return
    keys = [column for column in table.primary_key.columns]
    existing = ctx.conn.execute(select(table).where(*(column == row[column.name] for column in keys))).one()
    changed = sorted(name for name, value in row.items() if getattr(existing, name) != value)
    if changed:
        raise Rejected(
            f"version {row['version']} of {what} is already stored with another {changed[0]}; send a new version",
            where="payload.version",
        )
