"""The channel of each partner, chosen by configuration, and the one loop that picks files up.

A flow asks `channel_for(partner)` and sends an `Outgoing` (adapters.transport); it never knows
whether it goes over SOAP, REST or SFTP. `source_for(partner)` is the partner's folder of files for
the hub, if it has one. `installed` puts a channel (a `MemoryChannel`) in place of a partner's
configured one, for tests.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

from adapters.rest import RestTransport
from adapters.sftp import SftpEndpoint, SftpTransport
from adapters.soap.client import SoapTransport
from adapters.transport import Channel, FileSource, Outgoing
from core.config import Partner, RestChannel, SftpChannel, SoapChannel
from core.errors import Misconfigured, Rejected, Transient
from core.redaction import redact
from core.store import is_outage, utcnow
from core.transfers import Receipt

log = logging.getLogger(__name__)

SPOOL = 1_048_576
"""Bytes of a picked-up file held in memory; a larger file goes on to a temporary file."""

_built: dict[tuple[object, ...], Channel] = {}
_installed: dict[str, Channel] = {}


def channel_for(partner: Partner, environ: Mapping[str, str] | None = None) -> Channel:
    """The partner's channel, built once per process, configuration and secret (a fixed secret
    takes effect without a restart); Misconfigured when it has none or a secret is not set."""
    if partner.id in _installed:
        return _installed[partner.id]
    environ = os.environ if environ is None else environ
    channel = partner.channel
    secrets = (getattr(channel, "token_env", None), getattr(channel, "private_key_env", None))
    key = (partner.id, channel, *(environ.get(name) for name in secrets if name))
    if key not in _built:
        _built[key] = _build(partner, environ)
    return _built[key]


def source_for(partner: Partner, environ: Mapping[str, str] | None = None) -> FileSource | None:
    """The partner's folder of files for the hub, or None when its channel has none."""
    channel = _installed.get(partner.id)
    if channel is None and isinstance(partner.channel, SftpChannel):
        channel = channel_for(partner, environ)
    return channel if isinstance(channel, FileSource) else None


@contextmanager
def installed(channels: Mapping[str, Channel]) -> Iterator[None]:
    """Use `channels` (by partner id) in place of the configured ones while the block runs."""
    _installed.update(channels)
    try:
        yield
    finally:
        for partner_id in channels:
            _installed.pop(partner_id, None)


def send_all(channel: Channel, items: Sequence[Outgoing]) -> list[Receipt]:
    """Send the items in order; the receipts, for `core.transfers.call`."""
    return [channel.send(item) for item in items]


def _build(partner: Partner, environ: Mapping[str, str]) -> Channel:
    channel = partner.channel
    if isinstance(channel, SoapChannel):
        return SoapTransport(str(channel.url), timeout=channel.timeout)
    if isinstance(channel, RestChannel):
        return RestTransport(str(channel.url), secret(channel.token_env, partner, environ), timeout=channel.timeout)
    if isinstance(channel, SftpChannel):
        endpoint = SftpEndpoint(
            host=channel.host,
            port=channel.port,
            username=channel.username,
            private_key=secret(channel.private_key_env, partner, environ),
            host_key=channel.host_key,
            timeout=channel.timeout,
        )
        return SftpTransport(endpoint, inbound_dir=channel.inbound_dir, outbound_dir=channel.outbound_dir)
    raise Misconfigured(f"partner {partner.id} has no channel", where="channel")


def secret(name: str, partner: Partner, environ: Mapping[str, str] | None = None) -> str:
    """The value of an environment variable the configuration names; Misconfigured when it is not set."""
    value = (os.environ if environ is None else environ).get(name)
    if not value:
        raise Misconfigured(f"environment variable {name} is not set", where=f"partner {partner.id}")
    return value


@dataclass
class Pickup:
    """What one round of pickup did: the files archived, and the files failed with their reasons."""

    archived: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def pick_up(
    source: FileSource,
    pattern: str,
    handle: Callable[[str, BinaryIO], None],
    *,
    done_suffix: str | None = ".done",
    settled: Callable[[Receipt, str | None], None] | None = None,
) -> Pickup:
    """Hand every complete file matching `pattern` to `handle(name, file)`, then archive it.

    A file `handle` refuses (Rejected), or fails on in any way but an outage of the store, goes to
    `failed/` with the reason, and the next file is taken. Transient (an outage of the store
    included) and Misconfigured end the round and leave the file for the next one. Each file
    archived or failed is then given to `settled(receipt, reason or None)`: its size and SHA-256
    as fetched, for `core.transfers.picked_up`.
    """
    done = Pickup()
    with source.inbox() as inbox:
        for name in inbox.ready(pattern, done_suffix=done_suffix):
            receipt = None
            try:
                with tempfile.SpooledTemporaryFile(max_size=SPOOL) as local:
                    inbox.fetch(name, local)
                    receipt = _receipt(name, local, source.transport)
                    handle(name, local)
            except (Transient, Misconfigured):
                raise
            except Exception as error:
                if is_outage(error):
                    raise Transient(f"the store is not reachable: {type(error).__name__}") from error
                if isinstance(error, Rejected):
                    reason = str(error)
                else:
                    reason = f"could not be processed ({type(error).__name__})"
                    log.error("file %s could not be processed\n%s", name, redact(traceback.format_exc()))
                inbox.fail(name, reason, done_suffix=done_suffix)
                log.warning("file %s moved to failed/: %s", name, reason)
                done.failed.append((name, reason))
                if receipt is not None and settled is not None:
                    settled(receipt, reason)
                continue
            inbox.archive(name, done_suffix=done_suffix)
            done.archived.append(name)
            if receipt is not None and settled is not None:
                settled(receipt, None)
    return done


def _receipt(name: str, local: BinaryIO, transport: str) -> Receipt:
    """The receipt of a fetched file, read through once; the file is left at its start."""
    local.seek(0)
    digest, size = hashlib.sha256(), 0
    while chunk := local.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    local.seek(0)
    return Receipt(name, size, digest.hexdigest(), transport, utcnow())
