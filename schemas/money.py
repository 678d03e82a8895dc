"""Money in Swedish kronor and calendar periods, the two units every flow counts in."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import GetCoreSchemaHandler, PlainSerializer
from pydantic_core import core_schema

from schemas.bounded import Exact

STOCKHOLM = ZoneInfo("Europe/Stockholm")
ORE = Decimal("0.01")


def round_ore(amount: Decimal) -> Decimal:
    """Round half up to öre: the one rounding the rules allow on amounts."""
    return amount.quantize(ORE, rounding=ROUND_HALF_UP)


Money = Annotated[
    Exact,
    PlainSerializer(lambda value: f"{value:.2f}", return_type=str, when_used="json"),
]
"""An amount in SEK. Always a Decimal, read from a string or an integer (never a float); written to
JSON as a string with two decimals."""


class Period:
    """A calendar month, written `YYYY-MM`; its bounds are local (Europe/Stockholm) midnights."""

    __slots__ = ("year", "month")
    year: int
    month: int
    _FORMAT = re.compile(r"^(\d{4})-(\d{2})$")

    def __init__(self, year: int, month: int) -> None:
        if not 1 <= month <= 12:
            raise ValueError(f"month {month} is not 1-12")
        if not 1900 <= year <= 2999:
            raise ValueError(f"year {year} is out of range")
        object.__setattr__(self, "year", year)
        object.__setattr__(self, "month", month)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Period is immutable")

    @classmethod
    def parse(cls, text: str) -> Period:
        match = cls._FORMAT.match(text.strip()) if isinstance(text, str) else None
        if not match:
            raise ValueError(f"not a period: expected YYYY-MM, got {text!r}")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, day: dt.date) -> Period:
        return cls(day.year, day.month)

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def last_day(self) -> dt.date:
        return self.next().first_day - dt.timedelta(days=1)

    @property
    def days(self) -> int:
        return self.last_day.day

    def next(self) -> Period:
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Period:
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def starts_at(self) -> dt.datetime:
        """The first instant of the month, local time."""
        return dt.datetime.combine(self.first_day, dt.time(), STOCKHOLM)

    def ends_at(self) -> dt.datetime:
        """The first instant after the month, local time."""
        return self.next().starts_at()

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def __repr__(self) -> str:
        return f"Period({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Period) and (self.year, self.month) == (other.year, other.month)

    def __lt__(self, other: Period) -> bool:
        return (self.year, self.month) < (other.year, other.month)

    def __hash__(self) -> int:
        return hash((self.year, self.month))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def validate(value: Any) -> Period:
            if isinstance(value, Period):
                return value
            if isinstance(value, str):
                return cls.parse(value)
            raise ValueError("a period is a string YYYY-MM")

        return core_schema.json_or_python_schema(
            json_schema=core_schema.no_info_plain_validator_function(validate),
            python_schema=core_schema.no_info_plain_validator_function(validate),
            serialization=core_schema.to_string_ser_schema(),
            metadata={"pydantic_js_functions": [lambda _s, _h: {"type": "string", "pattern": r"^\d{4}-\d{2}$"}]},
        )
