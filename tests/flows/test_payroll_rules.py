"""The payroll rules on their own (specs/fees-and-payroll-rules.md, section B): proration by
calendar days, stays, versions replacing each other from their valid_from, corrections."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flows.payroll.rules import Paid, Terms, corrections, period_lines
from schemas.money import Period

D = Decimal


def terms(version=1, valid_from="2026-01-01", valid_to=None, arvode="9800.00", omkostnad="5420.00", per="month"):
    return Terms(
        version,
        "foster_family",
        "F1",
        "196403273813",
        "IFO",
        dt.date.fromisoformat(valid_from),
        dt.date.fromisoformat(valid_to) if valid_to else None,
        {"arvode": (D(arvode), per), "omkostnad": (D(omkostnad), per)},
    )


def paid(versions, period, stays=frozenset()):
    return {(line.component, line.days, line.amount) for line in period_lines(versions, Period.parse(period), stays)}


def test_a_month_prorates_by_its_own_number_of_days():
    assert paid([terms(valid_from="2026-02-10")], "2026-02") == {
        ("arvode", 19, D("6650.00")),
        ("omkostnad", 19, D("3677.86")),  # 5 420.00 x 19 / 28 = 3 677.857...
    }
    assert paid([terms(valid_from="2026-04-10")], "2026-04") == {
        ("arvode", 21, D("6860.00")),  # x 21 / 30
        ("omkostnad", 21, D("3794.00")),
    }
    assert paid([terms(valid_from="2026-03-10")], "2026-03") == {
        ("arvode", 22, D("6954.84")),  # 9 800.00 x 22 / 31 = 6 954.838...
        ("omkostnad", 22, D("3846.45")),  # 5 420.00 x 22 / 31 = 3 846.451...
    }
    assert paid([terms()], "2026-03") == {("arvode", 31, D("9800.00")), ("omkostnad", 31, D("5420.00"))}


def test_an_assignment_that_starts_and_ends_inside_one_month():
    assert paid([terms(valid_from="2026-03-10", valid_to="2026-03-19")], "2026-03") == {
        ("arvode", 10, D("3161.29")),  # 9 800.00 x 10 / 31 = 3 161.290...
        ("omkostnad", 10, D("1748.39")),
    }
    assert paid([terms(valid_from="2026-03-10", valid_to="2026-03-19")], "2026-04") == set()


def test_stays_outside_the_assignments_dates_are_ignored():
    contact = terms(valid_from="2026-03-05", valid_to="2026-03-20", arvode="350.00", omkostnad="250.00", per="day")
    stays = frozenset(dt.date(2026, 3, day) for day in (1, 4, 5, 6, 20, 21, 31))
    assert paid([contact], "2026-03", stays) == {("arvode", 3, D("1050.00")), ("omkostnad", 3, D("750.00"))}


def test_a_version_replaces_the_earlier_ones_from_its_valid_from():
    raise_from_march_15 = terms(version=2, valid_from="2026-03-15", arvode="10400.00")
    lines = period_lines([terms(), raise_from_march_15], Period(2026, 3))
    assert [(line.component, line.days, line.unit_price, line.amount) for line in lines] == [
        ("arvode", 14, D("9800.00"), D("4425.81")),  # 9 800.00 x 14 / 31
        ("arvode", 17, D("10400.00"), D("5703.23")),  # 10 400.00 x 17 / 31
        ("omkostnad", 31, D("5420.00"), D("5420.00")),  # the same price all month: one line
    ]
    ended_earlier = terms(version=2, valid_from="2026-01-01", valid_to="2026-03-15")
    assert paid([terms(), ended_earlier], "2026-04") == set()
    assert paid([terms(), ended_earlier], "2026-03") == {("arvode", 15, D("4741.94")), ("omkostnad", 15, D("2622.58"))}


def test_a_correction_is_the_difference_at_todays_price_and_nothing_when_nothing_changed():
    march = Period(2026, 3)
    before = {"arvode": Paid(31, D("9800.00"), D("9800.00")), "omkostnad": Paid(31, D("5420.00"), D("5420.00"))}
    raised = terms(version=2, valid_from="2026-03-01", arvode="10400.00")
    deltas = corrections(period_lines([terms(), raised], march), before, raised, march)
    assert [(d.component, d.days, d.unit_price, d.amount, d.date_from, d.date_to) for d in deltas] == [
        ("arvode", 0, D("10400.00"), D("600.00"), dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    ]
    ended = terms(version=2, valid_to="2026-03-20")
    deltas = corrections(period_lines([terms(), ended], march), before, ended, march)
    assert [(d.component, d.days, d.amount) for d in deltas] == [
        ("arvode", -11, D("-3477.42")),  # 9 800.00 x 20 / 31 = 6 322.58 paid 9 800.00
        ("omkostnad", -11, D("-1923.23")),
    ]
    assert corrections(period_lines([terms()], march), before, terms(), march) == []
