"""Bounded values: what every inbound text and integer is held to, so that whatever a partner
sends is either stored as it is on both stores or refused naming its field (architecture rule 12).

- `Text`: no control characters but tab and line breaks (PostgreSQL cannot store NUL in text,
  and no partner has reason to send the others). Checked by pydantic's own pattern engine, so it
  costs nothing per field in Python.
- `Count`, `Version`: integers the store's `INTEGER` column holds on PostgreSQL and SQLite alike.
- `Exact`: a decimal written as a string or an integer, never read from a binary float (which
  would have been rounded before anyone could see it).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, StringConstraints
from pydantic_core import ErrorDetails

CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
"""The control characters refused in text (Unicode's Cc): C0 but tab, line feed and carriage
return, DEL, and C1."""

NO_CONTROL = f"^[^{CONTROL}]*$"

UNPRINTABLE = re.compile(f"[{CONTROL}\ud800-\udfff]")
"""What text may never hold: those control characters, and lone surrogates (no store can keep them)."""

MAX_INT = 2**31 - 1
"""The largest value of an `INTEGER` column on PostgreSQL (SQLite holds more)."""

Text = Annotated[str, StringConstraints(pattern=NO_CONTROL)]
"""Text without control characters; add `Field(max_length=...)` beside it."""

Version = Annotated[int, Field(ge=1, le=MAX_INT)]
"""A version number, 1 and up, as the store holds it."""

Count = Annotated[int, Field(ge=0, le=MAX_INT)]
"""A count, 0 and up, as the store holds it."""


def _not_float(value: object) -> object:
    if isinstance(value, float):
        raise ValueError("write an exact number as a string or an integer, not a floating-point number")
    return value


Exact = Annotated[Decimal, BeforeValidator(_not_float)]
"""A decimal that was never a binary float: money, hours."""


def error_message(detail: ErrorDetails) -> str:
    """pydantic's message for one error, in words for a partner: without "Value error, ", and
    with the control-character pattern said as a rule rather than shown as a regular expression."""
    if detail.get("type") == "string_pattern_mismatch" and UNPRINTABLE.search(str(detail.get("input", ""))):
        return "control characters are not allowed (only tab and line breaks)"
    return detail["msg"].removeprefix("Value error, ")
