"""The reimbursement flow's part of a tenant's configuration: its table `reimbursement` (bands,
rounding, rates with valid-from dates, tolerance, lock date; every default is the spec's)."""

from __future__ import annotations

from core.config import section
from schemas.reimbursement import Rules

rules_of = section("tenant", "reimbursement", Rules)
