"""`reimbursement.deliver`: each provider gets its own lines of an approved run, as a CSV and a
readable HTML report, on its file channel; each file is recorded as a transfer.
"""

from __future__ import annotations

from functools import partial

from sqlalchemy import select

from adapters.basis_files import basis_csv, basis_file_name, basis_html
from adapters.channels import channel_for, send_all
from adapters.transport import Outgoing
from core import transfers
from core.consumer import PartnerCall, StepContext
from core.errors import Rejected
from core.steps import step
from flows.reimbursement.tables import adjustments, lines, runs
from schemas.reimbursement import BasisApproved


@step("reimbursement.deliver", consumes=["reimbursement.basis_approved"], calls_partner=True)
def deliver_basis(ctx: StepContext) -> PartnerCall:
    approved: BasisApproved = ctx.document
    run_id, provider_org = approved.run_id, approved.provider_org
    tenant = ctx.config.tenant(ctx.envelope.tenant)
    partner = ctx.config.provider(ctx.envelope.tenant, provider_org)
    if tenant is None or partner is None:
        raise Rejected(f"no provider with organisation number {provider_org}", where="payload.provider_org")
    run = ctx.conn.execute(select(runs).where(runs.c.id == run_id, runs.c.tenant == tenant.code)).first()
    if run is None:
        raise Rejected(f"no run {run_id} in tenant {tenant.code}", where="payload.run_id")
    if run.status != "approved":
        raise Rejected(f"run {run_id} is {run.status}, only an approved run is sent", where="payload.run_id")
    if run.period != str(approved.period):
        raise Rejected(f"run {run_id} is for {run.period}, not {approved.period}", where="payload.period")
    mine = [
        dict(row._mapping)
        for row in ctx.conn.execute(
            select(lines)
            .where(lines.c.run_id == run_id, lines.c.provider_org == provider_org)
            .order_by(lines.c.customer, lines.c.category, lines.c.band, lines.c.rate)
        )
    ]
    changes = [
        dict(row._mapping)
        for row in ctx.conn.execute(
            select(adjustments)
            .where(adjustments.c.run_id == run_id, adjustments.c.provider_org == provider_org)
            .order_by(adjustments.c.id)
        )
    ]
    files = {
        "csv": basis_csv(run.period, mine),
        "html": basis_html(
            tenant_name=tenant.name,
            period=run.period,
            provider_org=provider_org,
            run_id=run_id,
            kind=run.kind,
            lines=mine,
            adjustments=changes,
        ),
    }
    items = [
        Outgoing(basis_file_name(tenant.code, run.period, run_id, provider_org, suffix), data)
        for suffix, data in files.items()
    ]
    return transfers.call(
        ctx,
        partner,
        partial(send_all, channel_for(partner), items),
        action="reimbursement.transfer",
        subject=f"run:{run_id}",
        detail=f"basis of {provider_org} to {partner.id}: {len(mine)} lines",
    )
