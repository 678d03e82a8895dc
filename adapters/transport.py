"""What every transport implements: one small interface per direction.

- Out: `Channel.send(item) -> Receipt`. An `Outgoing` is a file (a name and bytes) or a document,
  which carries, beside its file form, the forms the request-reply transports send it in (a REST
  request, a SOAP operation). SFTP writes the file; REST and SOAP send the document's form, or the
  file when there is none (`PUT {base}/files/{name}`, SOAP `DeliverFile`).
- In: `FileSource.inbox()` opens an `Inbox`: the files a partner left for the hub, fetched one by
  one, then archived or failed with a reason (`adapters.channels.pick_up` is the one loop over it).

Rejected when the partner says the item is wrong, Transient when it is down or unreachable,
Misconfigured when the hub's own configuration is wrong.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from core.transfers import Receipt


@dataclass(frozen=True)
class RestRequest:
    """A document as a REST call: `method {base}{path}` with a JSON body."""

    method: str
    path: str
    body: dict[str, Any]


@dataclass(frozen=True)
class SoapCall:
    """A document as a SOAP operation of the partner's WSDL; the answer must carry `echo`'s values."""

    operation: str
    values: dict[str, Any]
    echo: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outgoing:
    """One thing to send, under a deterministic name (a resend replaces): a file, or a document in
    its file form (`data`) and, where the contract has them, its REST and SOAP forms. A large file
    is a path: SFTP streams it from the disk."""

    name: str
    data: bytes | Path
    rest: RestRequest | None = None
    soap: SoapCall | None = None

    def body(self) -> bytes:
        """The file's bytes, read from the disk if they are there."""
        return self.data if isinstance(self.data, bytes) else self.data.read_bytes()


class Channel(Protocol):
    def send(self, item: Outgoing) -> Receipt:
        """Deliver `item` to the partner; the receipt says what it took."""


class Inbox(Protocol):
    """A partner's folder of files for the hub, open for one round of pickup."""

    def ready(self, pattern: str, *, done_suffix: str | None) -> list[str]:
        """The names matching the glob `pattern` that are complete (their done-file beside them, or
        every match when `done_suffix` is None), sorted."""

    def fetch(self, name: str, target: BinaryIO) -> int:
        """Stream the file into `target`; the number of bytes."""

    def archive(self, name: str, *, done_suffix: str | None) -> None:
        """Move the file (and its done-file) to `archive/`."""

    def fail(self, name: str, reason: str, *, done_suffix: str | None) -> None:
        """Move the file (and its done-file) to `failed/`, with the reason beside it."""


@runtime_checkable
class FileSource(Protocol):
    transport: str
    """The transport's name in a file's Receipt."""

    def inbox(self) -> AbstractContextManager[Inbox]:
        """Open the partner's folder of files for the hub (one connection for the round)."""
