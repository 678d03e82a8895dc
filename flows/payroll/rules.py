"""The pay lines of one assignment in one period, and the corrections of a paid period (rules:
specs/fees-and-payroll-rules.md, section B). Pure: no store, no clock.

On a day, the assignment's terms are those of its highest version whose `valid_from` is on or
before that day (a version replaces the earlier ones from its `valid_from` on); the day is covered
when it is also on or before that version's `valid_to`. A per-month component pays its amount ×
covered days / days in the month, rounded half up to öre; a per-day component pays its amount for
each covered day with a stay. One line per component and price (a price that changes within the
month makes a second line: the contract is silent on that case).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from schemas.money import Period, round_ore
from schemas.payroll import COMPONENTS, AssignmentKind, ComponentName, Per

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Terms:
    """One version of an assignment, as the rules read it."""

    version: int
    kind: AssignmentKind
    employee_id: str
    recipient: str
    cost_centre: str
    valid_from: dt.date
    valid_to: dt.date | None
    components: Mapping[ComponentName, tuple[Decimal, Per]]


@dataclass(frozen=True)
class Line:
    """What an assignment's component pays for a period, at one price; `terms` is the version in force
    at its last day (the recipient, kind and cost centre the line is paid with)."""

    component: ComponentName
    terms: Terms
    date_from: dt.date
    date_to: dt.date
    days: int
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Paid:
    """What the approved files paid an assignment's component for one period, in all."""

    days: int
    amount: Decimal
    unit_price: Decimal


def governed(versions: Sequence[Terms], first: dt.date, last: dt.date) -> list[tuple[Terms, dt.date, dt.date]]:
    """The stretches of [first, last] each version governs and covers, in date order."""
    steps: list[tuple[dt.date, Terms]] = []
    for terms in sorted(versions, key=lambda v: (v.valid_from, v.version)):
        if steps and terms.version < steps[-1][1].version:
            continue  # a higher version already governs from an earlier day
        if steps and steps[-1][0] == terms.valid_from:
            steps[-1] = (terms.valid_from, terms)
        else:
            steps.append((terms.valid_from, terms))
    stretches = []
    for i, (start, terms) in enumerate(steps):
        end = steps[i + 1][0] - ONE_DAY if i + 1 < len(steps) else last
        if terms.valid_to is not None:
            end = min(end, terms.valid_to)
        start, end = max(start, first), min(end, last)
        if start <= end:
            stretches.append((terms, start, end))
    return stretches


def period_lines(versions: Sequence[Terms], period: Period, stays: frozenset[dt.date] = frozenset()) -> list[Line]:
    """The assignment's lines for `period`, given its versions and the days with a stay."""
    found: dict[tuple[ComponentName, Decimal, Per], _Sum] = {}
    for terms, start, end in governed(versions, period.first_day, period.last_day):
        for component, (price, per) in terms.components.items():
            days = (end - start).days + 1 if per == "month" else sum(1 for day in stays if start <= day <= end)
            key = (component, price, per)
            if key in found:
                found[key].add(days, end, terms)
            else:
                found[key] = _Sum(days, start, end, terms)
    lines = []
    for (component, price, per), total in found.items():
        amount = round_ore(price * total.days / period.days) if per == "month" else price * total.days
        if total.days or amount:
            lines.append(Line(component, total.terms, total.start, total.end, total.days, price, amount))
    lines.sort(key=lambda line: (COMPONENTS.index(line.component), line.date_from))
    return lines


@dataclass
class _Sum:
    """The covered days at one price so far, from the first to the last, and the terms of the last."""

    days: int
    start: dt.date
    end: dt.date
    terms: Terms

    def add(self, days: int, end: dt.date, terms: Terms) -> None:
        self.days += days
        self.end, self.terms = end, terms


def corrections(now: Sequence[Line], paid: Mapping[ComponentName, Paid], latest: Terms, period: Period) -> list[Line]:
    """The delta lines of a paid `period`: what its lines come to `now` minus what was `paid`, per
    component; dated the whole period, at the price in force now (else the price paid)."""
    deltas = []
    for component in COMPONENTS:
        mine = [line for line in now if line.component == component]
        before = paid.get(component, Paid(0, Decimal("0.00"), Decimal("0.00")))
        days = sum(line.days for line in mine) - before.days
        amount = sum((line.amount for line in mine), Decimal("0.00")) - before.amount
        if days == 0 and amount == 0:
            continue
        terms = mine[-1].terms if mine else latest
        price = mine[-1].unit_price if mine else before.unit_price
        deltas.append(Line(component, terms, period.first_day, period.last_day, days, price, amount))
    return deltas
