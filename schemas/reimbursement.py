"""The reimbursement run's documents: the tenant's rules, each visit's outcome, and the basis
(ersättningsunderlag) each provider is paid on (rules: specs/reimbursement-rules.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.bounded import Count
from schemas.identity import OrganisationNumber, Personnummer
from schemas.money import Money, Period
from schemas.orders import Category

Band = Literal["day", "evening"]
"""A time band: `day` (weekday daytime) or `evening` (evening, night, weekends, public holidays)."""

BANDS: tuple[Band, ...] = ("day", "evening")
CATEGORIES: tuple[Category, ...] = ("service", "omsorg")

Reason = Literal[
    "not_approved",
    "declined",
    "incomplete",
    "no_service",
    "too_long",
    "after_lock",
    "no_order",
    "outside_order_period",
    "unknown_service",
]
"""Why a visit is not paid: the first check of the spec's section 1 that fails."""

VisitWarning = Literal["manual", "double_staffing_not_granted", "over_ordered"]
"""What a paid visit raises for review (spec section 5)."""


class RateRule(BaseModel):
    """SEK per hour for one category and band, valid from a date until the next rule's date."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: Category
    band: Band
    valid_from: dt.date
    sek_per_hour: Money = Field(ge=0, decimal_places=2)


DEFAULT_RATES: tuple[RateRule, ...] = (
    RateRule(category="service", band="day", valid_from=dt.date(2026, 1, 1), sek_per_hour=Decimal("380.00")),
    RateRule(category="service", band="evening", valid_from=dt.date(2026, 1, 1), sek_per_hour=Decimal("450.00")),
    RateRule(category="omsorg", band="day", valid_from=dt.date(2026, 1, 1), sek_per_hour=Decimal("420.00")),
    RateRule(category="omsorg", band="evening", valid_from=dt.date(2026, 1, 1), sek_per_hour=Decimal("495.00")),
)


def _default_rounding() -> dict[Band, int | None]:
    return {"day": None, "evening": 15}


class Rules(BaseModel):
    """A tenant's reimbursement rules. Every default is the spec's.

    Bands: a start at or after `day_starts` and before `evening_starts` (local time) on one of
    `day_weekdays` that is not a public holiday is `day` (07:00-18:59 Monday to Friday); every
    other start is `evening`. Public holidays are `holidays.Sweden` in `holiday_categories`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    day_starts: dt.time = dt.time(7, 0)
    evening_starts: dt.time = dt.time(19, 0)
    day_weekdays: frozenset[int] = Field(default=frozenset(range(5)), description="0 is Monday")
    holiday_categories: frozenset[Literal["public", "de_facto", "bank", "optional"]] = frozenset({"public"})
    rounding_minutes: dict[Band, int | None] = Field(
        default_factory=_default_rounding,
        description="paid minutes are rounded up to a whole multiple of this; None is no rounding",
    )
    tolerance: Decimal = Field(default=Decimal("1.10"), ge=1, description="the ordered-time cap is hours x 60 x this")
    max_duration_hours: int = Field(default=12, ge=1, le=24)
    lock_working_day: int = Field(default=3, ge=1, le=20, description="the nth working day of the next month")
    lock_time: dt.time = dt.time(23, 59)
    lock_dates: dict[Period, dt.date] = Field(
        default_factory=dict, description="a period's lock date set by the review group; overrides the default"
    )
    rates: tuple[RateRule, ...] = DEFAULT_RATES

    @field_validator("day_weekdays")
    @classmethod
    def _weekdays(cls, value: frozenset[int]) -> frozenset[int]:
        if not value <= set(range(7)):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Rules:
        if not self.day_starts < self.evening_starts:
            raise ValueError("day_starts must be before evening_starts")
        if set(self.rounding_minutes) != set(BANDS):
            raise ValueError("rounding_minutes needs exactly the bands day and evening")
        for band, step in self.rounding_minutes.items():
            if step is not None and not 1 <= step <= 240:
                raise ValueError(f"rounding for {band} must be 1-240 minutes or None")
        seen = set()
        for rule in self.rates:
            key = (rule.category, rule.band, rule.valid_from)
            if key in seen:
                raise ValueError(f"two rates for {rule.category}/{rule.band} from {rule.valid_from}")
            seen.add(key)
        missing = {(c, b) for c in CATEGORIES for b in BANDS} - {(r.category, r.band) for r in self.rates}
        if missing:
            raise ValueError("no rate for " + ", ".join(f"{c}/{b}" for c, b in sorted(missing)))
        for period, day in self.lock_dates.items():
            if day <= period.last_day:
                raise ValueError(f"the lock date of {period} must be after the period, not {day}")
        return self


class VisitOutcome(BaseModel):
    """What the run decided for one visit: the version counted, paid or the reason why not,
    its minutes and the warnings for review. Unknown parts (no start, no order) are None."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    visit_id: str
    version: int
    provider_org: OrganisationNumber
    customer: Personnummer
    actual_start: AwareDatetime | None = None
    paid: bool
    reason: Reason | None = None
    category: Category | None = None
    band: Band | None = None
    duration_minutes: int | None = None
    paid_minutes: int = 0
    rate: Money | None = None
    warnings: list[VisitWarning] = Field(default_factory=list)

    @model_validator(mode="after")
    def _reason(self) -> VisitOutcome:
        if self.paid == (self.reason is not None):
            raise ValueError("a paid visit has no reason and an unpaid visit has one")
        if not self.paid and self.paid_minutes:
            raise ValueError("an unpaid visit has no paid minutes")
        return self


class BasisLine(BaseModel):
    """One line of a basis: a person's paid minutes in one category and band at one rate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider_org: OrganisationNumber
    customer: Personnummer
    category: Category
    band: Band
    rate: Money = Field(description="SEK per hour")
    minutes: int = Field(ge=0)
    amount: Money = Field(description="minutes x rate / 60, rounded half up to öre")


class ProviderBasis(BaseModel):
    """A provider's reimbursement basis for a period: its lines and their total. Home care is VAT exempt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider_org: OrganisationNumber
    period: Period
    lines: list[BasisLine]
    total: Money
    vat_category: Literal["E"] = "E"
    vat_rate: Decimal = Decimal(0)

    @model_validator(mode="after")
    def _total(self) -> ProviderBasis:
        if sum((line.amount for line in self.lines), Decimal(0)) != self.total:
            raise ValueError("total is not the sum of the lines")
        if any(line.provider_org != self.provider_org for line in self.lines):
            raise ValueError("a line of another provider")
        return self


class BasisApproved(BaseModel):
    """A provider's basis in an approved run, ready to be sent to it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: Count
    provider_org: str = Field(pattern=r"^\d{10}$")
    period: Period
