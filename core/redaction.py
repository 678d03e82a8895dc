"""Keeps personnummer out of logs: a logging filter that masks anything shaped like one.

Names cannot be recognised in free text, so the rule is that names are never formatted into
log messages at all; identity types mask themselves in `str` and `repr` (see schemas.identity).
"""

from __future__ import annotations

import logging
import re

# YYMMDD-NNNC, YYMMDD+NNNC, YYMMDDNNNC or YYYYMMDDNNNC, the day possibly +60 (samordningsnummer),
# standing alone (not inside a longer number, word or id).
PERSONNUMMER = re.compile(
    r"(?<![0-9A-Za-z-])((?:18|19|20)?\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]|6[1-9]|[78]\d|9[01]))"
    r"[-+]?\d{4}(?![0-9A-Za-z])"
)


def redact(text: str) -> str:
    """`text` with every personnummer-shaped number masked to its date part."""
    return PERSONNUMMER.sub(lambda match: f"{match[1]}-****", text)


class RedactingFilter(logging.Filter):
    """Formats the record's message once and masks it, so no handler sees the raw arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
