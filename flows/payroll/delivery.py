"""`payroll.deliver`: an approved run's PAXml file, written from its lines, checked against the
XSD and sent to the tenant's payroll system (recorded as a transfer). The file is the same bytes
every time it is written: a resend replaces it with itself. The child is in no line, so in no file.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path

from sqlalchemy import Connection, select

from adapters.channels import channel_for, send_all
from adapters.paxml import check_paxml, file_name, write_paxml
from adapters.transport import Outgoing
from core import transfers
from core.config import Partner, Tenant
from core.consumer import PartnerCall, StepContext
from core.errors import Misconfigured, Rejected
from core.steps import step
from core.transfers import Receipt
from flows.payroll.configuration import payroll_settings
from flows.payroll.tables import lines, runs
from schemas.identity import Personnummer
from schemas.payroll import PayLine, PayrollApproved, PayrollHeader


@step("payroll.deliver", consumes=["payroll.approved"], calls_partner=True)
def deliver(ctx: StepContext) -> PartnerCall:
    approved: PayrollApproved = ctx.document  # type: ignore[assignment]
    tenant = ctx.config.tenant(ctx.envelope.tenant)
    if tenant is None:
        raise Rejected(f"no tenant {ctx.envelope.tenant}", where="tenant")
    run = ctx.conn.execute(select(runs).where(runs.c.id == approved.run_id, runs.c.tenant == tenant.code)).first()
    if run is None:
        raise Rejected(f"no payroll run {approved.run_id} in tenant {tenant.code}", where="payload.run_id")
    if run.status != "approved" or run.period != str(approved.period):
        raise Rejected(f"run {run.id} is {run.status} for {run.period}: not an approved run of {approved.period}")
    partner = payroll_partner(tenant)
    descriptor, name = tempfile.mkstemp(prefix="casehub-payroll-", suffix=".pax")
    path = Path(name)
    try:
        with open(descriptor, "wb") as target:
            count = write_paxml(target, header(tenant, run.file_date), pay_lines(ctx.conn, run.id, run.period))
        with path.open("rb") as written:
            check_paxml(written)  # a file that breaks the contract is the hub's bug: it never leaves
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    item = Outgoing(file_name(tenant.code, approved.period, run.id), path)
    return transfers.call(
        ctx,
        partner,
        partial(send_all, channel_for(partner), [item]),
        action="payroll.transfer",
        subject=f"payroll-run:{run.id}",
        detail=f"{approved.period}: {count} lines to {partner.id}",
        settle=partial(_remove, path),
    )


def payroll_partner(tenant: Tenant) -> Partner:
    partner = next((p for p in tenant.partners if p.kind == "payroll"), None)
    if partner is None:
        raise Misconfigured(f"tenant {tenant.code} has no partner of kind payroll", where="partners")
    return partner


def header(tenant: Tenant, date: dt.date) -> PayrollHeader:
    settings = payroll_settings(tenant)
    if settings.organisation_number is None:
        raise Misconfigured(f"tenant {tenant.code} has no payroll.organisation_number", where="payroll")
    return PayrollHeader(
        date=date,
        organisation_number=settings.organisation_number,
        organisation_name=settings.organisation_name or tenant.name,
    )


def pay_lines(conn: Connection, run_id: int, period: str) -> Iterator[PayLine]:
    """The run's lines in the file's order: by recipient, assignment and component, the period's own
    line before the corrections of earlier periods, oldest first."""
    rows = conn.execute(
        select(lines)
        .where(lines.c.run_id == run_id)
        .order_by(
            lines.c.employee_id,
            lines.c.assignment_id,
            lines.c.component,
            lines.c.for_period != period,
            lines.c.for_period,
            lines.c.id,
        )
        .execution_options(yield_per=5000)
    )
    for row in rows:
        yield PayLine.model_construct(  # the values were validated when they arrived; the XSD checks the file
            employee_id=row.employee_id,
            personnummer=Personnummer(row.recipient),
            pay_code=row.pay_code,
            text=row.text,
            date_from=row.date_from,
            date_to=row.date_to,
            quantity=Decimal(row.days),
            unit_price=row.unit_price,
            amount=row.amount,
            cost_centre=row.cost_centre,
        )


def _remove(path: Path, _ctx: StepContext, _outcome: list[Receipt] | Exception) -> None:
    path.unlink(missing_ok=True)
