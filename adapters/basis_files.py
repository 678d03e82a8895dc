"""The reimbursement basis as files: a CSV for a provider's systems, an HTML report to read, and
the whole run as CSV or JSON for economy and the review group (`casehub reimbursement show`).

A provider's files hold its own lines only. Customers appear by personnummer (the provider
knows its customers; the basis is what it is paid on). UTF-8; amounts with a decimal point.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Iterable
from decimal import Decimal

from schemas.money import STOCKHOLM

HEADER = ["period", "provider_org", "customer", "category", "band", "rate", "minutes", "adjusted_minutes", "amount"]


def basis_file_name(tenant: str, period: str, run_id: int, provider_org: str, suffix: str) -> str:
    """Deterministic, so that a resend replaces the file instead of adding one."""
    return f"ersattning_{tenant}_{period.replace('-', '')}_{run_id}_{provider_org}.{suffix}"


def basis_csv(period: str, lines: Iterable[dict]) -> bytes:
    """`lines` are dicts with provider_org, customer, category, band, rate, minutes, adjusted_minutes, amount."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)
    for line in lines:
        writer.writerow(
            [
                period,
                line["provider_org"],
                line["customer"],
                line["category"],
                line["band"],
                f"{Decimal(line['rate']):.2f}",
                line["minutes"],
                line["adjusted_minutes"],
                f"{Decimal(line['amount']):.2f}",
            ]
        )
    return out.getvalue().encode("utf-8")


def basis_html(
    *,
    tenant_name: str,
    period: str,
    provider_org: str,
    run_id: int,
    kind: str,
    lines: list[dict],
    adjustments: list[dict],
) -> bytes:
    """A readable report of the same lines, their total, and every adjustment with who and why."""
    total = sum((Decimal(line["amount"]) for line in lines), Decimal("0.00"))
    rows = "".join(
        f"<tr><td>{html.escape(line['customer'])}</td><td>{line['category']}</td><td>{line['band']}</td>"
        f"<td class=n>{Decimal(line['rate']):.2f}</td><td class=n>{line['minutes']}</td>"
        f"<td class=n>{line['adjusted_minutes']}</td><td class=n>{Decimal(line['amount']):.2f}</td></tr>"
        for line in lines
    )
    changes = "".join(
        f"<li>{a['minutes']:+d} min, {html.escape(a['customer'])} {a['category']}/{a['band']}: "
        f"{html.escape(a['why'])} ({html.escape(a['by'])}, {a['at']:%Y-%m-%d})</li>"
        for a in adjustments
    )
    title = f"Ersättningsunderlag {html.escape(period)} – {html.escape(provider_org)}"
    page = f"""<!doctype html>
<html lang="sv"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif}}td,th{{padding:2px 8px}}.n{{text-align:right}}</style></head>
<body><h1>{title}</h1>
<p>{html.escape(tenant_name)}, körning {run_id} ({"rättelse" if kind == "correction" else "ordinarie"}).
Momsfritt (kategori E).</p>
<table><tr><th>kund</th><th>kategori</th><th>tidsband</th><th>timpris</th><th>minuter</th><th>justerat</th>
<th>belopp</th></tr>{rows}
<tr><th colspan=6>summa</th><th class=n>{total:.2f}</th></tr></table>
{f"<h2>Justeringar</h2><ul>{changes}</ul>" if changes else ""}
</body></html>
"""
    return page.encode("utf-8")


def basis_json(run: dict, totals: list[dict], lines: list[dict]) -> bytes:
    """A run's basis as JSON: the run (times in Stockholm local time), its total per provider and its
    lines, with the same fields as the CSV; amounts and rates as strings with two decimals."""
    facts = {key: run[key] for key in ("id", "tenant", "period", "kind", "status", "visits", "paid")}
    for key in ("lock_at", "created_at", "approved_at"):
        facts[key] = run[key].astimezone(STOCKHOLM).isoformat() if run.get(key) else None
    document = {
        "run": facts,
        "totals": [
            {
                "provider_org": t["provider_org"],
                "lines": t["lines"],
                "minutes": int(t["minutes"]),
                "amount": f"{Decimal(t['amount']):.2f}",
            }
            for t in totals
        ],
        "lines": [
            {
                "provider_org": line["provider_org"],
                "customer": line["customer"],
                "category": line["category"],
                "band": line["band"],
                "rate": f"{Decimal(line['rate']):.2f}",
                "minutes": line["minutes"],
                "adjusted_minutes": line["adjusted_minutes"],
                "amount": f"{Decimal(line['amount']):.2f}",
            }
            for line in lines
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
