"""Orders as files on a provider's SFTP server (specs/provider-orders.md, "SFTP file").

The hub writes `order_{orderid}_{version}.xml` into the provider's inbound folder (as `.part`,
then renamed, so a resend replaces); the provider drops `ack_{orderid}_{version}.xml` in its
outbound folder, which the hub picks up and moves to `archive/`, or to `failed/` with the reason.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from typing import Callable

from adapters.order_xml import encode_order
from adapters.sftp import SftpConnection, SftpEndpoint
from core.errors import Rejected
from schemas.orders import Order, OrderReceipt

log = logging.getLogger(__name__)

ACK_PATTERN = "ack_*.xml"


def order_file_name(order: Order) -> str:
    return f"order_{order.order_id}_{order.version}.xml"


class SftpOrderChannel:
    """Delivers an order by writing its file; the receipt is the completed rename."""

    def __init__(self, endpoint: SftpEndpoint, *, inbound_dir: str, outbound_dir: str) -> None:
        self.endpoint = endpoint
        self.inbound_dir = inbound_dir
        self.outbound_dir = outbound_dir

    def deliver(self, order: Order) -> OrderReceipt:
        with SftpConnection(self.endpoint) as sftp:
            sftp.upload(self.inbound_dir, order_file_name(order), encode_order(order))
        return OrderReceipt(
            order_id=order.order_id, version=order.version, received_at=dt.datetime.now(dt.timezone.utc)
        )

    def send_file(self, name: str, data: bytes) -> None:
        """Write a file for the provider into its inbound folder (as .part, then renamed)."""
        with SftpConnection(self.endpoint) as sftp:
            sftp.upload(self.inbound_dir, name, data)

    def pick_up_acknowledgements(self, handle: Callable[[bytes, str], None]) -> tuple[int, int]:
        """Hand every ack file to `handle(data, name)`; archive it after, or fail it with the reason
        when `handle` raises Rejected. Returns (archived, failed)."""
        archived = failed = 0
        with SftpConnection(self.endpoint) as sftp:
            for name in sftp.ready_files(self.outbound_dir, pattern=ACK_PATTERN, done_suffix=None):
                buffer = io.BytesIO()
                sftp.download(f"{self.outbound_dir}/{name}", buffer)
                try:
                    handle(buffer.getvalue(), name)
                except Rejected as error:
                    sftp.fail(self.outbound_dir, name, str(error), done_suffix=None)
                    log.warning("acknowledgement file %s refused: %s", name, error)
                    failed += 1
                    continue
                sftp.archive(self.outbound_dir, name, done_suffix=None)
                archived += 1
        return archived, failed
