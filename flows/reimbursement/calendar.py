"""Working days, the period's lock date and the time bands, with Sweden's public holidays
(`holidays.Sweden`, the categories in `Rules.holiday_categories`; by default the official ones)."""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from functools import lru_cache

import holidays

from schemas.money import STOCKHOLM, Period
from schemas.reimbursement import Band, Rules

PUBLIC = frozenset({"public"})


@lru_cache(maxsize=256)
def _holidays(year: int, categories: frozenset[str]) -> frozenset[dt.date]:
    calendar = holidays.Sweden(years=year, categories=tuple(sorted(categories)), include_sundays=False)
    return frozenset(calendar.keys())


def is_public_holiday(day: dt.date, rules: Rules | None = None) -> bool:
    return day in _holidays(day.year, rules.holiday_categories if rules else PUBLIC)


def is_working_day(day: dt.date, rules: Rules | None = None) -> bool:
    """Monday to Friday and not a public holiday."""
    return day.weekday() < 5 and not is_public_holiday(day, rules)


def working_days(period: Period, rules: Rules | None = None) -> list[dt.date]:
    """The working days of a month, in order."""
    first = period.first_day
    days = (first + dt.timedelta(days=i) for i in range(period.days))
    return [day for day in days if is_working_day(day, rules)]


def lock_date(period: Period, rules: Rules, override: dt.date | dt.datetime | None = None) -> dt.datetime:
    """The instant from which a version no longer counts in `period`'s run (aware, Europe/Stockholm).

    The first that is given wins: `override` (a date means `rules.lock_time` on it; a datetime
    must be aware), the review group's date in `rules.lock_dates`, and the default: `lock_time`
    on the `lock_working_day`th working day of the next month (2026-03: 2026-04-07 23:59,
    after Good Friday 3 April and Easter Monday 6 April).
    """
    if isinstance(override, dt.datetime):
        if override.tzinfo is None or override.utcoffset() is None:
            raise ValueError("a lock datetime must be timezone-aware")
        return override.astimezone(STOCKHOLM)
    day = override or rules.lock_dates.get(period)
    if day is None:
        days = working_days(period.next(), rules)
        day = days[rules.lock_working_day - 1] if rules.lock_working_day <= len(days) else None
        if day is None:
            raise ValueError(f"{period.next()} has fewer than {rules.lock_working_day} working days")
    return dt.datetime.combine(day, rules.lock_time, STOCKHOLM)


def is_day_date(day: dt.date, rules: Rules) -> bool:
    """True if the day band exists on this date (a weekday of the day band, not a public holiday)."""
    return day.weekday() in rules.day_weekdays and not is_public_holiday(day, rules)


def band_of(local_start: dt.datetime, rules: Rules) -> Band:
    """The band of a visit starting at `local_start`: `day` from `day_starts` up to (not including)
    `evening_starts` on a day date, otherwise `evening`. An aware datetime is first converted to
    Europe/Stockholm; a naive one is taken as Stockholm wall time."""
    if local_start.tzinfo is not None:
        local_start = local_start.astimezone(STOCKHOLM)
    wall = local_start.time().replace(tzinfo=None)
    if is_day_date(local_start.date(), rules) and rules.day_starts <= wall < rules.evening_starts:
        return "day"
    return "evening"


class PeriodClock:
    """A period cut at every local midnight and band boundary, as UTC timestamps.

    `locate(ts)` finds the piece holding an instant with one bisect: the hot loop of the run
    never converts a time zone. Piece `i` covers `[bounds[i], bounds[i + 1])`, its day of the
    month (0-based) is `day[i]` and its band `band[i]`; -1 means outside the period. Built with
    the same rules as `band_of`, so the two always agree.
    """

    __slots__ = ("period", "bounds", "day", "band", "pieces")

    def __init__(self, period: Period, rules: Rules) -> None:
        bounds: list[float] = []
        day_of: list[int] = []
        band_of_piece: list[Band] = []
        for index in range(period.days):
            date = period.first_day + dt.timedelta(days=index)
            points: list[tuple[dt.time, Band]] = [(dt.time(0), "evening")]
            if is_day_date(date, rules):
                points += [(rules.day_starts, "day"), (rules.evening_starts, "evening")]
            for at, band in points:
                bounds.append(dt.datetime.combine(date, at, STOCKHOLM).timestamp())
                day_of.append(index)
                band_of_piece.append(band)
        bounds.append(period.ends_at().timestamp())
        self.period = period
        self.bounds = bounds
        self.day = day_of
        self.band = band_of_piece
        self.pieces = len(day_of)

    def locate(self, ts: float) -> int:
        piece = bisect_right(self.bounds, ts) - 1
        return piece if 0 <= piece < self.pieces else -1
