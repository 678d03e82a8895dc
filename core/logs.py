"""How the hub's processes log: every line redacted (core.redaction), and an outage told in a few
lines, not a traceback per attempt of every library that notices it.

The hub's own loops say once that something stopped and once that it works again (core.outage).
Libraries say it on every attempt: pika at every reconnect, paramiko at every failed handshake,
dramatiq's consumer threads once per queue every few seconds. pika's and paramiko's own lines are
left out (the hub reports every failure of theirs that it catches); a library's line repeated
within a minute (the same logger and template) is let through once, and the next one after the
minute says how many were left out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from core.redaction import RedactingFilter

QUIET = {"pika": logging.CRITICAL, "paramiko": logging.CRITICAL}
"""Libraries whose lines only repeat what the hub reports itself, and the level they need to be heard."""

CHATTY = ("alembic", "dramatiq", "httpcore", "httpx", "urllib3", "uvicorn", "zeep")
"""Libraries that say at INFO what they do (a migration step, an HTTP request): heard at WARNING
unless a process is run verbose (`casehub -v`)."""

WINDOW = 60.0

OWN = {"core", "adapters", "flows", "sandbox", "cli", "__main__"}
"""The hub's own loggers: they say a thing once by design, and are never held back."""


class RepeatFilter(logging.Filter):
    """Lets a library's warning or worse through once per WINDOW seconds for the same logger family
    and message template; counts the ones it holds back and says so on the next one it lets through."""

    def __init__(self, window: float = WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # key -> (let through at, held back since)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name.split(".")[0] in OWN:
            return True
        key = (record.name.split("(")[0], record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            last, held = self._seen.get(key, (None, 0))
            if last is not None and now - last < self.window:
                self._seen[key] = (last, held + 1)
                return False
            self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.getMessage()} (and {held} more like it in the last {self.window:.0f} s)"
            record.args = None
        return True


_levels_set = False


def install(level: int = logging.INFO, *, verbose: bool = False) -> None:
    """Configure the root logger, and put redaction and the repeat filter on every handler there is.

    The first call sets the levels (`verbose`: the chatty libraries' INFO lines too); a later one
    only puts the filters on handlers made since.

    Libraries log through the root logger's handlers as long as nothing gives them handlers of
    their own: uvicorn is started with `log_config=None` for that (its default configuration
    writes "Exception in ASGI application" tracebacks with handlers of its own).
    """
    global _levels_set
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not _levels_set:
        _levels_set = True
        for name, quiet in QUIET.items():
            logging.getLogger(name).setLevel(quiet)
        for name in () if verbose else CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)
    for handler in handlers():
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter())
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def handlers() -> list[logging.Handler]:
    """Every handler of the root logger and of every other logger created so far."""
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    return [handler for logger in loggers for handler in logger.handlers]
