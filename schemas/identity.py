"""Swedish identity numbers: personnummer (and samordningsnummer) and organisationsnummer.

Each is parsed from the forms people write, kept as one canonical digit string, and works
as a pydantic field type. A personnummer is personal data: its str and repr mask the last
four digits, and so do the validation errors raised for any of these fields.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import re
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

STOCKHOLM = ZoneInfo("Europe/Stockholm")
COORDINATION_OFFSET = 60
"""A samordningsnummer writes the day of birth plus 60."""
FIRST_BIRTH_DATE = dt.date(1870, 1, 1)
"""No living person, nor any record the hub meets, was born before this day."""


_DOUBLED = {str(digit): (2 * digit) % 9 if digit < 9 else 9 for digit in range(10)}
"""A digit's share of a Luhn sum when it is doubled: its double, less 9 above 9."""


def check_digit(payload: str) -> str:
    """The Luhn check digit for `payload` (weights 2, 1, 2, ... from its last digit)."""
    total = sum(map(int, payload[-2::-2])) + sum(map(_DOUBLED.__getitem__, payload[-1::-2]))
    return str(-total % 10)


def _mask(value: Any) -> str:
    """What an error may show of an input: at most 8 leading characters, never the last four."""
    text = value.strip() if isinstance(value, str) else str(value)
    return text[: min(8, max(len(text) - 4, 0))] + "****"


_SPACE = re.compile(r"\s")


@functools.lru_cache
def _allowed(separators: str) -> re.Pattern[str]:
    return re.compile(f"[0-9{re.escape(separators)}]*")


def _clean(text: object, what: str, separators: str) -> str:
    """`text` without surrounding whitespace; rejects non-strings and stray characters."""
    if not isinstance(text, str):
        raise ValueError(f"not {what}: expected a string")
    text = text.strip()
    if _SPACE.search(text):
        raise ValueError(f"not {what}: whitespace inside the number")
    if not _allowed(separators).fullmatch(text):
        allowed = " or ".join(f"'{char}'" for char in separators)
        raise ValueError(f"not {what}: only digits 0-9 and a {allowed} separator are allowed")
    return text


class _IdentityNumber:
    """Shared behaviour: immutable digits, equality on them, and the pydantic field type."""

    __slots__ = ("digits",)
    digits: str
    _JSON_PATTERN: ClassVar[str]
    _CANONICAL_LENGTH: ClassVar[int]
    """The length of the form whose meaning depends on nothing else (no century to infer)."""

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.digits == self.digits

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.digits))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.digits,))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self})"

    if TYPE_CHECKING:  # each kind defines its own, with its own options

        @classmethod
        def parse(cls, text: str) -> _IdentityNumber: ...

    @classmethod
    def _validate(cls, value: Any) -> _IdentityNumber:
        """Pydantic validation; the error carries a masked input so no full number is echoed."""
        if isinstance(value, cls):
            return value
        try:
            if isinstance(value, str) and len(value) == cls._CANONICAL_LENGTH and value.isdigit():
                # a class is hashable; mypy checks its instances' __hash__ against Hashable (python/mypy#11470)
                return _parse_canonical(cls, value)  # type: ignore[arg-type]
            return cls.parse(value)
        except ValueError as error:
            detail = InitErrorDetails(
                type=PydanticCustomError("value_error", "Value error, {reason}", {"reason": str(error)}),
                loc=(),
                input=_mask(value),
            )
            raise ValidationError.from_exception_data(cls.__name__, [detail]) from None

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value: value.digits, return_schema=core_schema.str_schema()
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {"type": "string", "pattern": cls._JSON_PATTERN}


@functools.lru_cache(maxsize=200_000)
def _parse_canonical(cls: type[_IdentityNumber], digits: str) -> _IdentityNumber:
    """Numbers in their canonical form, parsed once: a month of visits names each customer many times."""
    return cls.parse(digits)


class Personnummer(_IdentityNumber):
    """A Swedish personal identity number, or a samordningsnummer (day of birth + 60).

    `digits` is always the 12-digit form YYYYMMDDNNNC. Build one with `parse` from what a
    person wrote; the constructor takes only the 12-digit form.
    """

    __slots__ = ()
    _CANONICAL_LENGTH = 12
    _FORM = re.compile(r"([0-9]{6}|[0-9]{8})([-+]?)([0-9]{4})")
    _DIGITS = re.compile(r"[0-9]{12}")
    _JSON_PATTERN = r"^\s*([0-9]{6}[-+]?|[0-9]{8}-?)[0-9]{4}\s*$"

    def __init__(self, digits: str, *, reference: dt.date | None = None) -> None:
        """`reference` is the day the number was written (default: today): no one is born after it."""
        if not (isinstance(digits, str) and self._DIGITS.fullmatch(digits)):
            raise ValueError("not a personnummer: expected the 12-digit form YYYYMMDDNNNC")
        born = _birth_date(digits)
        if born < FIRST_BIRTH_DATE:
            raise ValueError(f"a birth date before {FIRST_BIRTH_DATE.year} is not possible")
        if born > (reference or dt.datetime.now(STOCKHOLM).date()):
            raise ValueError("the birth date is in the future")
        if digits[8:11] == "000":
            raise ValueError("serial number 000 is never issued")
        if check_digit(digits[2:11]) != digits[11]:
            raise ValueError("wrong check digit")
        object.__setattr__(self, "digits", digits)

    @classmethod
    def parse(cls, text: str, *, reference: dt.date | None = None) -> Personnummer:
        """Read YYMMDD-NNNC, YYMMDD+NNNC, YYMMDDNNNC, YYYYMMDD-NNNC or YYYYMMDDNNNC.

        A 10-digit number gets its century from `reference` (default: today in Stockholm):
        with '-' or no separator the person is under 100 that day, with '+' 100 or older.
        """
        text = _clean(text, "a personnummer", "-+")
        count = len(text.replace("-", "").replace("+", ""))
        if count not in (10, 12):
            raise ValueError(f"not a personnummer: expected 10 or 12 digits, got {count}")
        match = cls._FORM.fullmatch(text)
        if not match:
            raise ValueError("not a personnummer: one '-' or '+' separator, right before the last four digits")
        date, separator, tail = match.groups()
        reference = reference or dt.datetime.now(STOCKHOLM).date()
        if len(date) == 8:
            if separator == "+":
                raise ValueError("'+' separator is only for 10-digit numbers")
            return cls(date + tail, reference=reference)
        return cls(_century(date, separator, reference) + date + tail, reference=reference)

    @property
    def is_coordination(self) -> bool:
        """True for a samordningsnummer, given to people who are not or not yet registered in Sweden."""
        return int(self.digits[6:8]) > COORDINATION_OFFSET

    @property
    def birth_date(self) -> dt.date:
        return _birth_date(self.digits)

    def __str__(self) -> str:
        return f"{self.digits[:8]}-****"


def _birth_date(digits: str) -> dt.date:
    """The date a 12-digit personnummer encodes; ValueError naming the date if there is none."""
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    if day > COORDINATION_OFFSET:
        day -= COORDINATION_OFFSET
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"impossible date {year:04d}-{month:02d}-{day:02d}") from None


def _century(yymmdd: str, separator: str, reference: dt.date) -> str:
    """The two century digits for a 10-digit number written with `separator` on `reference`."""
    month, day = int(yymmdd[2:4]), int(yymmdd[4:6])
    if day > COORDINATION_OFFSET:
        day -= COORDINATION_OFFSET
    year = reference.year - (reference.year - int(yymmdd[:2])) % 100
    if year == reference.year and (month, day) > (reference.month, reference.day):
        year -= 100
    if separator == "+":
        year -= 100
    if year < 100:
        raise ValueError("reference date is too early to place a 10-digit personnummer")
    return f"{year // 100:02d}"


class OrganisationNumber(_IdentityNumber):
    """A Swedish organisationsnummer; `digits` is its 10 digits. Not personal data, so str shows it."""

    __slots__ = ()
    _CANONICAL_LENGTH = 10
    _JSON_PATTERN = r"^\s*(16)?[0-9]{6}-?[0-9]{4}\s*$"

    def __init__(self, digits: str) -> None:
        if not (isinstance(digits, str) and re.fullmatch(r"[0-9]{10}", digits)):
            raise ValueError("not an organisation number: expected 10 digits")
        if digits[2] < "2":
            raise ValueError("not an organisation number: the third digit must be 2 or more")
        if check_digit(digits[:9]) != digits[9]:
            raise ValueError("wrong check digit")
        object.__setattr__(self, "digits", digits)

    @classmethod
    def parse(cls, text: str) -> OrganisationNumber:
        """Read NNNNNN-NNNN or NNNNNNNNNN, optionally with the prefix 16 (the 12-digit form)."""
        text = _clean(text, "an organisation number", "-")
        digits = text.replace("-", "")
        if len(digits) == 12:
            if not digits.startswith("16"):
                raise ValueError("not an organisation number: a 12-digit form starts with 16")
            text, digits = text[2:], digits[2:]
        if len(digits) != 10:
            raise ValueError(f"not an organisation number: expected 10 digits, got {len(digits)}")
        if not re.fullmatch(r"[0-9]{6}-?[0-9]{4}", text):
            raise ValueError("not an organisation number: one '-' separator, right before the last four digits")
        return cls(digits)

    @property
    def peppol_id(self) -> str:
        """The PEPPOL participant identifier (ICD 0007, Swedish organisationsnummer)."""
        return f"0007:{self.digits}"

    def __str__(self) -> str:
        return f"{self.digits[:6]}-{self.digits[6:]}"


def generate_personnummer(
    rng: random.Random,
    *,
    born_from: dt.date = dt.date(1925, 1, 1),
    born_to: dt.date = dt.date(2005, 12, 31),
    coordination: bool = False,
) -> Personnummer:
    """A valid personnummer (or samordningsnummer) for test data, born within the given days.

    Deterministic for a given `rng` state. The number may belong to a real person: use it
    only for synthetic data, never to look anyone up.
    """
    if born_from > born_to:
        raise ValueError("born_from is after born_to")
    born = born_from + dt.timedelta(days=rng.randint(0, (born_to - born_from).days))
    day = born.day + (COORDINATION_OFFSET if coordination else 0)
    body = f"{born.year:04d}{born.month:02d}{day:02d}{rng.randint(1, 999):03d}"
    return Personnummer(body + check_digit(body[2:]))


def generate_organisation_number(rng: random.Random) -> OrganisationNumber:
    """A valid organisation number for test data; deterministic for a given `rng` state."""
    body = f"{rng.choice('25789')}{rng.randint(0, 9)}{rng.randint(2, 9)}{rng.randint(0, 999999):06d}"
    return OrganisationNumber(body + check_digit(body))
