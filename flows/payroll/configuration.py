"""The payroll flow's part of a tenant's configuration: its table `payroll`.

```toml
[tenants.payroll]
organisation_number = "2120000076"     # the municipality's, in the file's header (foretagorgnr)
months_back = 12                       # how far back a run corrects paid periods
[tenants.payroll.pay_codes.foster_family]
arvode = { code = "3101", text = "Arvode familjehem" }
```

Every pay code not given is the spec's default.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.config import section
from schemas.bounded import Text
from schemas.payroll import AssignmentKind, ComponentName


class PayCode(BaseModel):
    """A pay code (löneart) and its text; a line's text is the pay code's text and the assignment id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[0-9]{1,6}$")
    text: Text = Field(min_length=1, max_length=50)


DEFAULT_PAY_CODES: dict[AssignmentKind, dict[ComponentName, PayCode]] = {
    "foster_family": {
        "arvode": PayCode(code="3101", text="Arvode familjehem"),
        "omkostnad": PayCode(code="3102", text="Omkostnad familjehem"),
    },
    "contact_family": {
        "arvode": PayCode(code="3111", text="Arvode kontaktfamilj"),
        "omkostnad": PayCode(code="3112", text="Omkostnad kontaktfamilj"),
    },
    "contact_person": {
        "arvode": PayCode(code="3121", text="Arvode kontaktperson"),
        "omkostnad": PayCode(code="3122", text="Omkostnad kontaktperson"),
    },
}


class PayrollSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    organisation_number: str | None = Field(
        default=None, pattern=r"^[0-9]{10}$", description="the municipality's, for the file's header"
    )
    organisation_name: Text | None = Field(default=None, max_length=100, description="default: the tenant's name")
    months_back: int = Field(default=12, ge=1, le=24, description="how far back a run corrects paid periods")
    pay_codes: dict[AssignmentKind, dict[ComponentName, PayCode]] = Field(default_factory=dict, validate_default=True)

    @field_validator("pay_codes")
    @classmethod
    def _with_defaults(
        cls, given: dict[AssignmentKind, dict[ComponentName, PayCode]]
    ) -> dict[AssignmentKind, dict[ComponentName, PayCode]]:
        return {kind: {**codes, **given.get(kind, {})} for kind, codes in DEFAULT_PAY_CODES.items()}


payroll_settings = section("tenant", "payroll", PayrollSettings)
