"""The reimbursement rules (specs/reimbursement-rules.md), each on a hand-computed example, the
spec's worked example, properties over generated visits, and a timing of 200 000 visits."""

from __future__ import annotations

import datetime as dt
import random
import time
from decimal import Decimal
from fractions import Fraction
from math import floor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.reimbursement.calendar import band_of, lock_date, working_days
from flows.reimbursement.rules import OrderRecord, RunStream, ServiceRecord, run
from schemas.identity import generate_organisation_number, generate_personnummer
from schemas.money import STOCKHOLM, Period
from schemas.orders import Order, OrderedService, Person
from schemas.reimbursement import RateRule, Rules
from schemas.visits import Visit

MARCH = Period(2026, 3)
RULES = Rules()
ORG = generate_organisation_number(random.Random(1))
OTHER_ORG = generate_organisation_number(random.Random(2))
PNR = generate_personnummer(random.Random(3))
OTHER_PNR = generate_personnummer(random.Random(4))
EARLY = dt.datetime(2026, 4, 1, 12, 0, tzinfo=STOCKHOLM)  # received well before the March lock
LOCK = dt.datetime(2026, 4, 7, 23, 59, tzinfo=STOCKHOLM)


def at(text: str) -> dt.datetime:
    """Stockholm wall time, e.g. '2026-03-02 08:04:12'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=STOCKHOLM)


def service(code: str, hours: str, *, valid_from=dt.date(2026, 1, 1), valid_to=None) -> OrderedService:
    category = "omsorg" if code == "HT-OMS" else "service"
    return OrderedService(
        code=code, category=category, hours_per_month=Decimal(hours), valid_from=valid_from, valid_to=valid_to
    )


def order(
    *services: OrderedService,
    provider=ORG,
    person=PNR,
    double_staffing=True,
    order_id="O-1",
    version=1,
    kind="new",
    effective_date=dt.date(2026, 1, 1),
    cancel_reason=None,
) -> Order:
    return Order(
        order_id=order_id,
        version=version,
        kind=kind,
        case_ref="C-1",
        effective_date=effective_date,
        person=Person(personnummer=person, name="Test Testsson"),
        provider_org=provider,
        services=list(services or (service("HT-OMS", "20"), service("HT-SERV", "8"))),
        double_staffing=double_staffing,
        cancel_reason=cancel_reason,
    )


ORDER = order()


def visit(
    visit_id: str,
    start: str | dt.datetime | None,
    end: str | dt.datetime | None,
    services=("HT-OMS",),
    *,
    version=1,
    provider=ORG,
    customer=PNR,
    confirmation="nfc",
    **flags,
) -> Visit:
    start = at(start) if isinstance(start, str) else start
    end = at(end) if isinstance(end, str) else end
    return Visit(
        visit_id=visit_id,
        version=version,
        provider_org=provider,
        customer_pnr=customer,
        employee_id="E1",
        actual_start=start,
        actual_end=end,
        confirmation=confirmation,
        manual_reason="tag broken" if confirmation == "manual" else None,
        services=list(services),
        edit_reason="corrected" if version > 1 else None,
        approved=flags.pop("approved", True),
        **flags,
    )


def sort_key(row):
    v = row[0]
    return v.provider_org.digits, v.customer_pnr.digits, v.actual_start or dt.datetime.max.replace(tzinfo=dt.UTC)


def go(*visits, orders=(ORDER,), period=MARCH, rules=RULES, **kwargs):
    rows = sorted(((v, EARLY) if isinstance(v, Visit) else v for v in visits), key=sort_key)
    return run(period, rules, orders, rows, keep="all", **kwargs)


def outcomes(result) -> dict:
    return {outcome.visit_id: outcome for outcome in result.outcomes}


def lines(result, provider=ORG) -> list[tuple]:
    return [
        (line.category, line.band, line.rate, line.minutes, line.amount) for line in result.bases[provider.digits].lines
    ]


# --- the spec's worked example --------------------------------------------------------------


def test_the_worked_example_of_the_spec():
    result = go(
        visit("1", "2026-03-02 08:04:12", "2026-03-02 08:31:40", ["HT-OMS"]),
        visit("2", "2026-03-02 19:10:00", "2026-03-02 19:32:00", ["HT-OMS", "HT-SERV"]),
        visit("3", "2026-03-07 10:00:00", "2026-03-07 10:20:00", ["HT-OMS"], double_staffing=True),
        visit("4", "2026-03-03 09:00:00", "2026-03-03 09:30:00", ["HT-OMS"], declined=True),
    )
    by_id = outcomes(result)
    assert [(by_id[i].paid_minutes, by_id[i].band, by_id[i].category) for i in "123"] == [
        (27, "day", "omsorg"),
        (30, "evening", "omsorg"),
        (60, "evening", "omsorg"),
    ]
    assert (by_id["4"].paid, by_id["4"].reason, by_id["4"].paid_minutes) == (False, "declined", 0)
    assert lines(result) == [
        ("omsorg", "day", Decimal("420.00"), 27, Decimal("189.00")),
        ("omsorg", "evening", Decimal("495.00"), 90, Decimal("742.50")),
    ]
    basis = result.bases[ORG.digits]
    assert basis.total == Decimal("931.50")
    assert (basis.vat_category, basis.vat_rate, basis.period) == ("E", 0, MARCH)
    assert result.reasons == {"declined": 1} and not result.warnings
    assert (result.visits, result.paid) == (4, 3)
    assert basis.model_dump(mode="json")["total"] == "931.50"


# --- paid minutes: bands, rounding, double staffing -----------------------------------------


@pytest.mark.parametrize(
    "start, band",
    [
        ("2026-03-02 07:00:00", "day"),
        ("2026-03-02 06:59:59", "evening"),
        ("2026-03-02 18:59:59", "day"),
        ("2026-03-02 19:00:00", "evening"),
        ("2026-03-07 10:00:00", "evening"),
        ("2026-03-08 10:00:00", "evening"),
        ("2026-04-03 10:00:00", "evening"),
        ("2026-04-06 10:00:00", "evening"),
        ("2026-04-07 10:00:00", "day"),
        ("2026-01-06 12:00:00", "evening"),
        ("2026-12-24 12:00:00", "day"),
    ],
)
def test_band_of_local_start(start, band):
    assert band_of(at(start), RULES) == band
    assert band_of(at(start).astimezone(dt.UTC), RULES) == band


def test_day_is_not_rounded_and_evening_rounds_up_to_15_minutes():
    result = go(
        visit("day27", "2026-03-02 10:00:00", "2026-03-02 10:27:59"),
        visit("eve27", "2026-03-02 19:00:00", "2026-03-02 19:27:00"),
        visit("eve30", "2026-03-03 20:00:00", "2026-03-03 20:30:00"),
        visit("eve31", "2026-03-04 06:00:00", "2026-03-04 06:31:00"),
        visit("eve0", "2026-03-04 21:00:00", "2026-03-04 21:00:40"),
    )
    by_id = outcomes(result)
    assert {i: (o.band, o.duration_minutes, o.paid_minutes) for i, o in by_id.items()} == {
        "day27": ("day", 27, 27),
        "eve27": ("evening", 27, 30),
        "eve30": ("evening", 30, 30),
        "eve31": ("evening", 31, 45),
        "eve0": ("evening", 0, 0),
    }


def test_weekend_and_public_holidays_are_evening():
    april = Period(2026, 4)
    result = go(
        visit("sat", "2026-04-04 10:00:00", "2026-04-04 10:20:00"),
        visit("good-friday", "2026-04-03 10:00:00", "2026-04-03 10:20:00"),
        visit("easter-monday", "2026-04-06 10:00:00", "2026-04-06 10:20:00"),
        visit("tuesday", "2026-04-07 10:00:00", "2026-04-07 10:20:00"),
        period=april,
    )
    by_id = outcomes(result)
    assert {i: (o.band, o.paid_minutes) for i, o in by_id.items()} == {
        "sat": ("evening", 30),
        "good-friday": ("evening", 30),
        "easter-monday": ("evening", 30),
        "tuesday": ("day", 20),
    }
    assert lines(result) == [
        ("omsorg", "day", Decimal("420.00"), 20, Decimal("140.00")),
        ("omsorg", "evening", Decimal("495.00"), 90, Decimal("742.50")),
    ]


def test_double_staffing_is_doubled_after_rounding_when_granted():
    granted = go(visit("1", "2026-03-07 10:00:00", "2026-03-07 10:20:00", double_staffing=True))
    assert outcomes(granted)["1"].paid_minutes == 60
    assert outcomes(granted)["1"].warnings == []
    day = go(visit("1", "2026-03-02 10:00:00", "2026-03-02 10:20:00", double_staffing=True))
    assert outcomes(day)["1"].paid_minutes == 40


def test_double_staffing_not_granted_is_paid_once_with_a_warning():
    result = go(
        visit("1", "2026-03-07 10:00:00", "2026-03-07 10:20:00", double_staffing=True),
        orders=[order(double_staffing=False)],
    )
    outcome = outcomes(result)["1"]
    assert (outcome.paid, outcome.paid_minutes, outcome.warnings) == (True, 30, ["double_staffing_not_granted"])
    assert result.warnings == {"double_staffing_not_granted": 1}


def test_category_is_omsorg_if_any_service_is_omsorg():
    result = go(
        visit("serv", "2026-03-02 10:00:00", "2026-03-02 10:30:00", ["HT-SERV"]),
        visit("both", "2026-03-03 10:00:00", "2026-03-03 10:30:00", ["HT-SERV", "HT-OMS"]),
    )
    assert {i: o.category for i, o in outcomes(result).items()} == {"serv": "service", "both": "omsorg"}
    assert lines(result) == [
        ("omsorg", "day", Decimal("420.00"), 30, Decimal("210.00")),
        ("service", "day", Decimal("380.00"), 30, Decimal("190.00")),
    ]


def test_a_visit_across_midnight_takes_the_band_of_its_start():
    result = go(
        visit("late-day", "2026-03-02 18:30:00", "2026-03-03 00:30:00"),
        visit("friday-night", "2026-03-06 23:50:00", "2026-03-07 00:20:00"),
        visit("into-april", "2026-03-31 23:30:00", "2026-04-01 00:10:00"),
        visit("from-february", "2026-02-28 23:30:00", "2026-03-01 00:10:00"),
    )
    by_id = outcomes(result)
    assert {i: (o.band, o.paid_minutes) for i, o in by_id.items()} == {
        "late-day": ("day", 360),
        "friday-night": ("evening", 30),
        "into-april": ("evening", 45),
    }
    assert result.outside_period == 1


def test_the_change_to_summer_time_gives_the_true_length():
    # Sunday 2026-03-29: 02:00 CET becomes 03:00 CEST, so 01:30 to 03:30 local is one hour
    zoned = visit("zoned", at("2026-03-29 01:30:00"), at("2026-03-29 03:30:00"))
    offsets = Visit.model_validate_json(zoned.model_dump_json()).model_copy(update={"visit_id": "offsets"})
    assert offsets.actual_start.tzinfo is not STOCKHOLM
    result = go(zoned, offsets)
    by_id = outcomes(result)
    assert {i: (o.band, o.duration_minutes, o.paid_minutes) for i, o in by_id.items()} == {
        "zoned": ("evening", 60, 60),
        "offsets": ("evening", 60, 60),
    }


def test_the_change_back_from_summer_time_gives_the_true_length():
    # Sunday 2026-10-25: 03:00 CEST becomes 02:00 CET, so 01:30 to the second 02:30 is two hours
    october = Period(2026, 10)
    start = at("2026-10-25 01:30:00")
    end = dt.datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=STOCKHOLM)
    result = go(visit("1", start, end), period=october, orders=[order(service("HT-OMS", "20"))])
    outcome = outcomes(result)["1"]
    assert (outcome.band, outcome.duration_minutes, outcome.paid_minutes) == ("evening", 120, 120)


# --- which visits are paid ------------------------------------------------------------------


def test_each_unpaid_reason():
    result = go(
        visit("not-approved", "2026-03-02 10:00:00", "2026-03-02 10:30:00", approved=False, declined=True),
        visit("declined", "2026-03-02 11:00:00", "2026-03-02 11:30:00", declined=True),
        visit("no-end", "2026-03-02 12:00:00", None),
        visit("no-length", "2026-03-02 13:00:00", "2026-03-02 13:00:00"),
        visit("no-service", "2026-03-02 14:00:00", "2026-03-02 14:30:00", []),
        visit("too-long", "2026-03-03 06:00:00", "2026-03-03 18:01:00"),
        visit("twelve-hours", "2026-03-04 06:00:00", "2026-03-04 18:00:59"),
        visit("unknown", "2026-03-05 10:00:00", "2026-03-05 10:30:00", ["HT-XYZ"]),
        visit("one-unknown", "2026-03-05 11:00:00", "2026-03-05 11:30:00", ["HT-OMS", "HT-XYZ"]),
    )
    assert {i: o.reason for i, o in outcomes(result).items()} == {
        "not-approved": "not_approved",
        "declined": "declined",
        "no-end": "incomplete",
        "no-length": "incomplete",
        "no-service": "no_service",
        "too-long": "too_long",
        "twelve-hours": None,
        "unknown": "unknown_service",
        "one-unknown": "unknown_service",
    }
    assert outcomes(result)["twelve-hours"].paid_minutes == 720
    assert all(o.paid_minutes == 0 and o.warnings == [] for o in result.outcomes if not o.paid)
    assert result.reasons == {
        "not_approved": 1,
        "declined": 1,
        "incomplete": 2,
        "no_service": 1,
        "too_long": 1,
        "unknown_service": 2,
    }


def test_no_order_of_this_provider_or_on_that_day():
    part = order(service("HT-OMS", "20", valid_from=dt.date(2026, 3, 10), valid_to=dt.date(2026, 3, 20)))
    result = go(
        visit("other-provider", "2026-03-12 10:00:00", "2026-03-12 10:30:00", provider=OTHER_ORG),
        visit("other-person", "2026-03-12 10:00:00", "2026-03-12 10:30:00", customer=OTHER_PNR),
        visit("before", "2026-03-09 10:00:00", "2026-03-09 10:30:00"),
        visit("first-day", "2026-03-10 10:00:00", "2026-03-10 10:30:00"),
        visit("last-day", "2026-03-20 10:00:00", "2026-03-20 10:30:00"),
        visit("after", "2026-03-23 10:00:00", "2026-03-23 10:30:00"),
        orders=[part],
    )
    assert {i: o.reason for i, o in outcomes(result).items()} == {
        "other-provider": "no_order",
        "other-person": "no_order",
        "before": "outside_order_period",
        "first-day": None,
        "last-day": None,
        "after": "outside_order_period",
    }
    assert result.bases[OTHER_ORG.digits].lines == [] and result.bases[OTHER_ORG.digits].total == 0


def test_a_cancelled_order_ends_the_day_before_its_effective_date():
    state = order(version=2, kind="amend")
    cancel = Order(
        order_id="O-1",
        version=3,
        kind="cancel",
        case_ref="C-1",
        effective_date=dt.date(2026, 3, 15),
        person=state.person,
        provider_org=ORG,
        cancel_reason="moved",
    )
    result = go(
        visit("14th", "2026-03-14 10:00:00", "2026-03-14 10:30:00"),
        visit("15th", "2026-03-15 10:00:00", "2026-03-15 10:30:00"),
        orders=[order(), state, cancel],
    )
    assert {i: o.reason for i, o in outcomes(result).items()} == {"14th": None, "15th": "outside_order_period"}


def test_a_manual_confirmation_is_paid_with_a_warning():
    result = go(visit("1", "2026-03-02 10:00:00", "2026-03-02 10:30:00", confirmation="manual"))
    outcome = outcomes(result)["1"]
    assert (outcome.paid, outcome.paid_minutes, outcome.warnings) == (True, 30, ["manual"])
    assert result.warnings == {"manual": 1}


# --- versions and the lock date -------------------------------------------------------------


def test_lock_date_of_march_2026_is_after_easter():
    assert [d.day for d in working_days(Period(2026, 4))[:3]] == [1, 2, 7]
    lock = lock_date(MARCH, RULES)
    assert lock == dt.datetime(2026, 4, 7, 23, 59, tzinfo=STOCKHOLM)
    assert lock.utcoffset() == dt.timedelta(hours=2)
    assert lock_date(Period(2026, 1), RULES) == at("2026-02-04 23:59:00")
    assert lock_date(Period(2025, 12), RULES) == at("2026-01-07 23:59:00")  # 1 and 6 January are holidays
    moved = Rules(lock_dates={"2026-03": "2026-04-20"})
    assert lock_date(MARCH, moved) == at("2026-04-20 23:59:00")
    assert lock_date(MARCH, moved, dt.date(2026, 4, 21)) == at("2026-04-21 23:59:00")
    with pytest.raises(ValueError):
        Rules(lock_dates={"2026-03": "2026-03-31"})


def test_the_highest_version_received_before_the_lock_counts():
    v1 = visit("1", "2026-03-02 10:00:00", "2026-03-02 10:30:00")
    v2 = visit("1", "2026-03-02 10:00:00", "2026-03-02 10:45:00", version=2)
    v3 = visit("1", "2026-03-02 09:00:00", "2026-03-02 11:00:00", version=3)  # a correction-run edit
    result = go((v2, at("2026-04-02 09:00:00")), (v1, at("2026-03-02 11:00:00")), (v3, LOCK + dt.timedelta(seconds=1)))
    outcome = outcomes(result)["1"]
    assert (outcome.version, outcome.paid_minutes) == (2, 45)
    assert result.later_versions == 1 and result.visits == 1


def test_an_edit_can_move_a_visit_into_another_place_in_the_group():
    v1 = visit("1", "2026-03-20 10:00:00", "2026-03-20 10:30:00")
    v2 = visit("1", "2026-03-02 10:00:00", "2026-03-02 11:00:00", version=2)
    other = visit("2", "2026-03-10 10:00:00", "2026-03-10 10:30:00")
    result = go(v1, v2, other)
    assert [(o.visit_id, o.version, o.paid_minutes) for o in result.outcomes] == [("1", 2, 60), ("2", 1, 30)]


def test_a_visit_received_only_after_the_lock_is_after_lock():
    late = visit("late", "2026-03-02 10:00:00", "2026-03-02 10:30:00")
    at_lock = visit("at-lock", "2026-03-03 10:00:00", "2026-03-03 10:30:00")
    just_before = visit("before", "2026-03-04 10:00:00", "2026-03-04 10:30:00")
    declined_late = visit("declined-late", "2026-03-05 10:00:00", "2026-03-05 10:30:00", declined=True)
    result = go(
        (late, at("2026-04-08 08:00:00")),
        (at_lock, LOCK),
        (just_before, LOCK - dt.timedelta(seconds=1)),
        (declined_late, at("2026-04-08 08:00:00")),
    )
    assert {i: o.reason for i, o in outcomes(result).items()} == {
        "late": "after_lock",
        "at-lock": "after_lock",
        "before": None,
        "declined-late": "declined",
    }
    later = go((late, at("2026-04-08 08:00:00")), lock_override=dt.date(2026, 4, 10))
    assert outcomes(later)["late"].paid


# --- the ordered-time cap -------------------------------------------------------------------


def test_the_visit_crossing_the_cap_is_cut_and_later_ones_get_zero():
    one_hour = order(service("HT-OMS", "1"), service("HT-SERV", "8"))  # cap 60 x 1.10 = 66 minutes
    result = go(
        visit("1", "2026-03-02 10:00:00", "2026-03-02 10:30:00"),
        visit("2", "2026-03-03 10:00:00", "2026-03-03 10:30:00"),
        visit("3", "2026-03-04 10:00:00", "2026-03-04 10:30:00"),
        visit("4", "2026-03-05 10:00:00", "2026-03-05 10:30:00"),
        visit("serv", "2026-03-06 10:00:00", "2026-03-06 10:30:00", ["HT-SERV"]),
        orders=[one_hour],
    )
    by_id = outcomes(result)
    assert [(by_id[i].paid, by_id[i].paid_minutes, by_id[i].warnings) for i in ("1", "2", "3", "4", "serv")] == [
        (True, 30, []),
        (True, 30, []),
        (True, 6, ["over_ordered"]),
        (True, 0, ["over_ordered"]),
        (True, 30, []),
    ]
    assert lines(result) == [
        ("omsorg", "day", Decimal("420.00"), 66, Decimal("462.00")),
        ("service", "day", Decimal("380.00"), 30, Decimal("190.00")),
    ]
    assert result.warnings == {"over_ordered": 2}


def test_the_cap_counts_visits_in_order_of_actual_start_across_bands():
    one_hour = order(service("HT-OMS", "1"))  # 66 minutes
    result = go(
        visit("eve", "2026-03-02 19:00:00", "2026-03-02 19:50:00"),  # 50 -> 60 evening
        visit("day", "2026-03-03 08:00:00", "2026-03-03 08:30:00"),  # 30, cut to 6
        orders=[one_hour],
    )
    assert [(o.visit_id, o.paid_minutes) for o in result.outcomes] == [("eve", 60), ("day", 6)]
    assert lines(result) == [
        ("omsorg", "day", Decimal("420.00"), 6, Decimal("42.00")),
        ("omsorg", "evening", Decimal("495.00"), 60, Decimal("495.00")),
    ]


def test_part_month_orders_are_prorated_by_days_and_rounded_down():
    # from 10 March: 22 of 31 days; 20 h x 60 x 1.10 x 22 / 31 = 936.77 -> 936 minutes
    from_10th = order(service("HT-OMS", "20", valid_from=dt.date(2026, 3, 10)))
    result = go(
        visit("1", "2026-03-16 08:00:00", "2026-03-16 18:00:00"),
        visit("2", "2026-03-17 08:00:00", "2026-03-17 18:00:00"),
        visit("3", "2026-03-18 08:00:00", "2026-03-18 08:30:00"),
        orders=[from_10th],
    )
    assert [o.paid_minutes for o in result.outcomes] == [600, 336, 0]
    assert [o.warnings for o in result.outcomes] == [[], ["over_ordered"], ["over_ordered"]]
    # to 20 March: 20 of 31 days: 1320 x 20 / 31 = 851.6 -> 851; two orders add up: 851 + 66 = 917
    to_20th = order(service("HT-OMS", "20", valid_to=dt.date(2026, 3, 20)))
    another = order(service("HT-OMS", "1"), order_id="O-2")
    result = go(
        visit("1", "2026-03-16 08:00:00", "2026-03-16 18:00:00"),
        visit("2", "2026-03-17 08:00:00", "2026-03-17 18:00:00"),
        orders=[to_20th, another],
    )
    assert [o.paid_minutes for o in result.outcomes] == [600, 317]


# --- money ----------------------------------------------------------------------------------


def test_a_rate_change_mid_month_makes_two_lines():
    rules = Rules(
        rates=RULES.rates
        + (RateRule(category="omsorg", band="day", valid_from=dt.date(2026, 3, 16), sek_per_hour=Decimal("440.00")),)
    )
    result = go(
        visit("fri", "2026-03-13 10:00:00", "2026-03-13 11:00:00"),
        visit("mon", "2026-03-16 10:00:00", "2026-03-16 11:00:00"),
        visit("tue", "2026-03-17 10:00:00", "2026-03-17 10:30:00"),
        rules=rules,
    )
    assert {i: o.rate for i, o in outcomes(result).items()} == {
        "fri": Decimal("420.00"),
        "mon": Decimal("440.00"),
        "tue": Decimal("440.00"),
    }
    assert lines(result) == [
        ("omsorg", "day", Decimal("420.00"), 60, Decimal("420.00")),
        ("omsorg", "day", Decimal("440.00"), 90, Decimal("660.00")),
    ]
    assert result.bases[ORG.digits].total == Decimal("1080.00")


def test_amounts_are_rounded_half_up_to_ore():
    rules = Rules(
        rates=tuple(
            r
            if (r.category, r.band) != ("service", "day")
            else r.model_copy(update={"sek_per_hour": Decimal("381.90")})
            for r in RULES.rates
        )
    )
    result = go(visit("1", "2026-03-02 10:00:00", "2026-03-02 10:01:00", ["HT-SERV"]), rules=rules)
    assert lines(result) == [("service", "day", Decimal("381.90"), 1, Decimal("6.37"))]  # 6.365, half even: 6.36


def test_lines_of_several_people_and_providers():
    orders = [ORDER, order(person=OTHER_PNR, order_id="O-2"), order(provider=OTHER_ORG, order_id="O-3")]
    result = go(
        visit("a", "2026-03-02 10:00:00", "2026-03-02 10:30:00"),
        visit("b", "2026-03-02 10:00:00", "2026-03-02 10:10:00", customer=OTHER_PNR),
        visit("c", "2026-03-02 19:00:00", "2026-03-02 19:10:00", provider=OTHER_ORG),
        orders=orders,
    )
    mine = result.bases[ORG.digits]
    assert [(line.customer.digits, line.minutes) for line in mine.lines] == sorted(
        [(PNR.digits, 30), (OTHER_PNR.digits, 10)]
    )  # lines come in the order of the groups
    assert mine.total == Decimal("280.00")
    assert lines(result, OTHER_ORG) == [("omsorg", "evening", Decimal("495.00"), 15, Decimal("123.75"))]
    assert result.total == Decimal("403.75")


# --- the input -----------------------------------------------------------------------------


def test_groups_out_of_order_are_refused_without_showing_a_personnummer():
    first, second = sorted([PNR, OTHER_PNR], key=lambda p: p.digits)
    rows = [
        (visit("1", "2026-03-02 10:00:00", "2026-03-02 10:30:00", customer=second), EARLY),
        (visit("2", "2026-03-02 10:00:00", "2026-03-02 10:30:00", customer=first), EARLY),
    ]
    with pytest.raises(ValueError, match="out of order") as error:
        run(MARCH, RULES, [ORDER], rows)
    assert first.digits not in str(error.value) and second.digits not in str(error.value)


def test_naive_received_at_is_refused():
    rows = [(visit("1", "2026-03-02 10:00:00", "2026-03-02 10:30:00"), dt.datetime(2026, 4, 1))]
    with pytest.raises(ValueError, match="timezone-aware"):
        run(MARCH, RULES, [ORDER], rows)


def test_the_stream_and_light_records():
    record = OrderRecord(
        provider_org=ORG.digits,
        person=PNR.digits,
        double_staffing=False,
        services=(ServiceRecord("HT-OMS", "omsorg", Decimal(20), dt.date(2026, 1, 1)),),
    )
    stream = RunStream(
        MARCH,
        RULES,
        [record],
        [
            (visit("1", "2026-03-02 10:00:00", "2026-03-02 10:30:00"), EARLY),
            (visit("2", "2026-03-02 10:40:00", "2026-03-02 10:50:00", declined=True), EARLY),
        ],
    )
    with pytest.raises(RuntimeError):
        stream.bases()
    seen = [(o.visit_id, o.paid_minutes, o.reason) for o in stream]
    assert seen == [("1", 30, None), ("2", 0, "declined")]
    assert stream.result().bases[ORG.digits].total == Decimal("210.00")
    review = run(
        MARCH,
        RULES,
        [record],
        [
            (visit("1", "2026-03-02 10:00:00", "2026-03-02 10:30:00"), EARLY),
            (visit("2", "2026-03-02 10:40:00", "2026-03-02 10:50:00", declined=True), EARLY),
        ],
    )
    assert [o.visit_id for o in review.outcomes] == ["2"]  # keep="review": only what a reviewer reads


def test_an_order_of_another_tenant_is_refused():
    record = OrderRecord(
        ORG.digits, PNR.digits, (ServiceRecord("HT-OMS", "omsorg", Decimal(20), dt.date(2026, 1, 1)),), tenant="0180"
    )
    with pytest.raises(ValueError, match="tenant"):
        run(MARCH, RULES, [record], [], tenant="0125")


def test_the_default_rules_are_the_spec_and_survive_json():
    assert (RULES.day_starts, RULES.evening_starts, RULES.day_weekdays) == (
        dt.time(7),
        dt.time(19),
        frozenset({0, 1, 2, 3, 4}),
    )
    assert RULES.rounding_minutes == {"day": None, "evening": 15}
    assert (RULES.tolerance, RULES.max_duration_hours, RULES.lock_working_day, RULES.lock_time) == (
        Decimal("1.10"),
        12,
        3,
        dt.time(23, 59),
    )
    assert {(r.category, r.band): (r.valid_from, r.sek_per_hour) for r in RULES.rates} == {
        ("service", "day"): (dt.date(2026, 1, 1), Decimal("380.00")),
        ("service", "evening"): (dt.date(2026, 1, 1), Decimal("450.00")),
        ("omsorg", "day"): (dt.date(2026, 1, 1), Decimal("420.00")),
        ("omsorg", "evening"): (dt.date(2026, 1, 1), Decimal("495.00")),
    }
    moved = Rules(lock_dates={"2026-03": "2026-04-20"})
    assert Rules.model_validate_json(moved.model_dump_json()) == moved
    with pytest.raises(ValueError, match="no rate for omsorg/evening"):
        Rules(rates=[r for r in RULES.rates if (r.category, r.band) != ("omsorg", "evening")])


def test_a_missing_rate_is_refused_at_the_start():
    with pytest.raises(ValueError, match="no service/day rate valid on 2025-12-01"):
        run(Period(2025, 12), RULES, [], [])


# --- properties -----------------------------------------------------------------------------

PROVIDERS = [ORG, OTHER_ORG]
PEOPLE = [PNR, OTHER_PNR, generate_personnummer(random.Random(5))]
CODES = {"HT-OMS": "omsorg", "HT-SERV": "service", "HT-MAT": "service", "HT-BAD": "omsorg"}
MONTH_START = dt.datetime(2026, 3, 1, tzinfo=STOCKHOLM)


@st.composite
def scenarios(draw):
    orders = []
    for provider in PROVIDERS:
        for person in PEOPLE:
            if draw(st.booleans()):
                services = []
                for code in draw(st.sets(st.sampled_from(sorted(CODES)), min_size=1, max_size=3)):
                    first = draw(st.integers(-5, 30))
                    last = draw(st.none() | st.integers(first, 40))
                    services.append(
                        ServiceRecord(
                            code,
                            CODES[code],
                            Decimal(draw(st.integers(0, 1500))) / 100,
                            dt.date(2026, 3, 1) + dt.timedelta(days=first),
                            None if last is None else dt.date(2026, 3, 1) + dt.timedelta(days=last),
                        )
                    )
                orders.append(OrderRecord(provider.digits, person.digits, tuple(services), draw(st.booleans())))
    rows = []
    for number in range(draw(st.integers(0, 40))):
        provider, person = draw(st.sampled_from(PROVIDERS)), draw(st.sampled_from(PEOPLE))
        for version in range(1, draw(st.integers(1, 3)) + 1):
            start = MONTH_START + dt.timedelta(seconds=draw(st.integers(-3600, 31 * 86400)))
            end = start + dt.timedelta(seconds=draw(st.integers(0, 14 * 3600)))
            manual = draw(st.booleans())
            rows.append(
                (
                    Visit(
                        visit_id=f"V{number}",
                        version=version,
                        provider_org=provider,
                        customer_pnr=person,
                        employee_id="E",
                        actual_start=start,
                        actual_end=end,
                        confirmation="manual" if manual else "nfc",
                        manual_reason="x" if manual else None,
                        edit_reason="x" if version > 1 else None,
                        services=draw(st.lists(st.sampled_from(sorted(CODES) + ["HT-XYZ"]), max_size=2, unique=True)),
                        double_staffing=draw(st.booleans()),
                        declined=draw(st.integers(0, 9)) == 0,
                        approved=draw(st.integers(0, 9)) > 0,
                    ),
                    LOCK + dt.timedelta(hours=draw(st.integers(-400, 20))),
                )
            )
    rows.sort(key=sort_key)
    return orders, rows


def cap(orders, provider, person, category) -> int:
    first, last = dt.date(2026, 3, 1), dt.date(2026, 3, 31)
    total = Fraction(0)
    for record in orders:
        if (record.provider_org, record.person) != (provider, person):
            continue
        for s in record.services:
            if s.category == category:
                days = (min(s.valid_to or last, last) - max(s.valid_from, first)).days + 1
                total += Fraction(s.hours_per_month) * max(days, 0)
    return floor(total * 60 * Fraction(11, 10) / 31)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.randoms())
def test_properties_of_any_run(scenario, rnd):
    orders, rows = scenario
    result = run(MARCH, RULES, orders, rows, keep="all")
    paid = {}
    for outcome in result.outcomes:
        assert outcome.paid or outcome.paid_minutes == 0
        if outcome.actual_start is not None:
            assert outcome.band == band_of(outcome.actual_start, RULES)
        if outcome.paid:
            key = (outcome.provider_org.digits, outcome.customer.digits, outcome.category)
            paid[key] = paid.get(key, 0) + outcome.paid_minutes
    for (provider, person, category), minutes in paid.items():
        assert minutes <= cap(orders, provider, person, category)
    line_minutes = {}
    for provider, basis in result.bases.items():
        assert basis.total == sum(line.amount for line in basis.lines)
        for line in basis.lines:
            assert line.amount.as_tuple().exponent == -2
            assert line.amount == (line.minutes * line.rate / 60).quantize(Decimal("0.01"), "ROUND_HALF_UP")
            key = (provider, line.customer.digits, line.category)
            line_minutes[key] = line_minutes.get(key, 0) + line.minutes
    assert {k: v for k, v in paid.items() if v} == line_minutes
    # the order of rows inside a (provider, customer) group does not matter
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    regrouped = sorted(shuffled, key=lambda row: (row[0].provider_org.digits, row[0].customer_pnr.digits))
    again = run(MARCH, RULES, orders, regrouped, keep="all")
    assert again.outcomes == result.outcomes and again.bases == result.bases


# --- volume ---------------------------------------------------------------------------------


def test_200_000_visits_run_in_a_few_seconds(capsys):
    rng = random.Random(42)
    providers = [generate_organisation_number(rng) for _ in range(5)]
    people = {}
    while len(people) < 4_000:
        person = generate_personnummer(rng)
        people[person.digits] = person
    groups = sorted(
        ((provider, person) for provider in providers for person in people.values()),
        key=lambda group: (group[0].digits, group[1].digits),
    )
    orders = [
        OrderRecord(
            provider.digits,
            person.digits,
            (
                ServiceRecord("HT-OMS", "omsorg", Decimal(30), dt.date(2026, 1, 1)),
                ServiceRecord("HT-SERV", "service", Decimal(10), dt.date(2026, 1, 1)),
            ),
            True,
        )
        for provider, person in groups
    ]
    offset = dt.timezone(dt.timedelta(hours=1))
    first = dt.datetime(2026, 3, 1, 6, tzinfo=offset)
    received = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    per_group = 200_000 // len(groups)
    rows = []
    for provider, person in groups:  # already in the order the engine wants
        for minute in sorted(rng.randrange(0, 30 * 1440) for _ in range(per_group)):
            start = first + dt.timedelta(minutes=minute)
            rows.append(
                (
                    Visit.model_construct(
                        visit_id=f"V{len(rows)}",
                        version=1,
                        provider_org=provider,
                        customer_pnr=person,
                        employee_id="E1",
                        planned_start=None,
                        planned_end=None,
                        actual_start=start,
                        actual_end=start + dt.timedelta(seconds=rng.randrange(300, 3600)),
                        confirmation="nfc",
                        tag_id=None,
                        manual_reason=None,
                        services=["HT-OMS"] if rng.random() < 0.7 else ["HT-SERV"],
                        double_staffing=rng.random() < 0.05,
                        declined=rng.random() < 0.02,
                        approved=rng.random() < 0.99,
                        edit_reason=None,
                    ),
                    received,
                )
            )
    began = time.perf_counter()
    result = run(MARCH, RULES, orders, rows, keep="review")
    elapsed = time.perf_counter() - began
    with capsys.disabled():
        print(
            f"\n200 000 visits: {elapsed:.2f} s, {result.paid} paid, {len(result.outcomes)} for review, "
            f"{sum(len(b.lines) for b in result.bases.values())} lines, total {result.total} SEK"
        )
    assert result.visits == len(rows) == 200_000
