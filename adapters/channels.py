"""A provider's channel, chosen by configuration: the flow only ever calls `deliver(order)`.

Like an httpx transport, every channel implements one method; the flow does not know whether
the order goes out over SOAP, REST or as a file.
"""

from __future__ import annotations

import os
from typing import Protocol

from adapters.order_files import SftpOrderChannel
from adapters.rest import RestOrderChannel
from adapters.sftp import SftpEndpoint
from adapters.soap.client import SoapOrderChannel
from core.config import Partner, RestChannel, SftpChannel, SoapChannel
from core.errors import Misconfigured
from schemas.orders import Order, OrderReceipt


class OrderChannel(Protocol):
    def deliver(self, order: Order) -> OrderReceipt:
        """Deliver the order; Rejected when the partner says it is wrong, Transient when it is down."""


class FileChannel(Protocol):
    def send_file(self, name: str, data: bytes) -> None:
        """Deliver a file under a deterministic name; a resend replaces it."""


_channels: dict[tuple, OrderChannel] = {}


def file_channel(partner: Partner, environ: dict[str, str] | None = None) -> FileChannel:
    """The channel a partner gets files on: its SFTP folder, `PUT {base}/files/{name}`, or SOAP DeliverFile."""
    return order_channel(partner, environ)


def order_channel(partner: Partner, environ: dict[str, str] | None = None) -> OrderChannel:
    """The channel of a provider, built once per process, configuration and secret (a fixed secret
    takes effect without a restart)."""
    environ = os.environ if environ is None else environ
    secrets = (getattr(partner.channel, "token_env", None), getattr(partner.channel, "private_key_env", None))
    key = (partner.id, partner.channel, *(environ.get(name) for name in secrets if name))
    if key not in _channels:
        _channels[key] = _build(partner, environ)
    return _channels[key]


def _build(partner: Partner, environ) -> OrderChannel:
    channel = partner.channel
    if isinstance(channel, SoapChannel):
        return SoapOrderChannel(str(channel.url), timeout=channel.timeout)
    if isinstance(channel, RestChannel):
        return RestOrderChannel(str(channel.url), secret(channel.token_env, partner, environ), timeout=channel.timeout)
    if isinstance(channel, SftpChannel):
        return sftp_order_channel(partner, environ)
    raise Misconfigured(f"partner {partner.id} has no channel", where="channel")


def sftp_order_channel(partner: Partner, environ: dict[str, str] | None = None) -> SftpOrderChannel:
    """The SFTP side of a provider: order files out, acknowledgement files in."""
    channel = partner.channel
    return SftpOrderChannel(
        sftp_endpoint(partner, environ), inbound_dir=channel.inbound_dir, outbound_dir=channel.outbound_dir
    )


def sftp_endpoint(partner: Partner, environ: dict[str, str] | None = None) -> SftpEndpoint:
    channel = partner.channel
    return SftpEndpoint(
        host=channel.host,
        port=channel.port,
        username=channel.username,
        private_key=secret(channel.private_key_env, partner, environ),
        host_key=channel.host_key,
        timeout=channel.timeout,
    )


def secret(name: str, partner: Partner, environ: dict[str, str] | None = None) -> str:
    """The value of an environment variable the configuration names; Misconfigured when it is not set."""
    value = (os.environ if environ is None else environ).get(name)
    if not value:
        raise Misconfigured(f"environment variable {name} is not set", where=f"partner {partner.id}")
    return value
