"""A channel in memory, around a handler function: what a test uses instead of a partner, as
httpx's MockTransport is used instead of a server (no network, no thread)."""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import BinaryIO

from adapters.transport import Outgoing
from core.transfers import Receipt


class MemoryChannel:
    """Sends by calling `handler(item)`, which may raise Rejected, Transient or Misconfigured as a
    partner would; what it took is in `sent`. `files` is the partner's folder of files for the hub:
    after a pickup, taken files are in `archived` and refused ones in `failed` with their reasons.
    """

    transport = "memory"

    def __init__(self, handler: Callable[[Outgoing], None] | None = None) -> None:
        self.handler = handler
        self.sent: list[Outgoing] = []
        self.files: dict[str, bytes] = {}
        self.archived: dict[str, bytes] = {}
        self.failed: dict[str, str] = {}
        self._lock = threading.Lock()

    def send(self, item: Outgoing) -> Receipt:
        taken = replace(item, data=item.body())  # a file on disk as its bytes, kept after the file goes
        if self.handler is not None:
            self.handler(taken)
        with self._lock:
            self.sent.append(taken)
        return Receipt.of(item.name, taken.body(), "memory")

    def drop(self, name: str, data: bytes, *, done_suffix: str | None = ".done") -> None:
        """Leave a file for the hub, as the partner would: the file, then its done-file."""
        with self._lock:
            self.files[name] = data
            if done_suffix is not None:
                self.files[name + done_suffix] = b""

    @contextmanager
    def inbox(self) -> Iterator[MemoryChannel]:
        with self._lock:
            yield self

    def ready(self, pattern: str, *, done_suffix: str | None) -> list[str]:
        return sorted(
            name
            for name in self.files
            if fnmatch.fnmatchcase(name, pattern)
            and (done_suffix is None or (not name.endswith(done_suffix) and name + done_suffix in self.files))
        )

    def fetch(self, name: str, target: BinaryIO) -> int:
        return target.write(self.files[name])

    def archive(self, name: str, *, done_suffix: str | None) -> None:
        self.archived[name] = self._take(name, done_suffix)

    def fail(self, name: str, reason: str, *, done_suffix: str | None) -> None:
        self._take(name, done_suffix)
        self.failed[name] = reason

    def _take(self, name: str, done_suffix: str | None) -> bytes:
        if done_suffix is not None:
            self.files.pop(name + done_suffix, None)
        return self.files.pop(name)
