"""Payroll: monthly fees (arvode) and cost reimbursements (omkostnad) to foster families, contact
families and contact persons, in a PAXml file to the payroll system (specs/fees-and-payroll-rules.md,
section B; specs/economy-and-payroll-files.md).

- `intake.py`: `payroll.store` keeps every version of an assignment and of a stay report.
- `rules.py`: the pay lines of an assignment in a period, from its versions and stays (pure).
- `run.py`: the run per tenant and period: draft (the period's lines and the corrections reaching
  back), approve (frozen; the period is paid once).
- `delivery.py`: `payroll.deliver` writes the approved run's file and sends it to payroll.
- `queries.py`: what review and IT operations read of a run (audited).
"""
