"""Orders as files over SFTP against a real OpenSSH sshd: order files out, ack files in."""

from __future__ import annotations

import random

import pytest

from adapters.order_files import SftpOrderChannel
from adapters.order_xml import decode_acknowledgement, decode_order, encode_acknowledgement
from adapters.sftp import SftpEndpoint
from core.errors import Rejected
from sandbox.case_system import CaseSystem
from schemas.identity import generate_organisation_number
from schemas.orders import Order, OrderAcknowledgement

ORG = generate_organisation_number(random.Random(3)).digits


@pytest.fixture
def channel(sshd, partner_folder):
    (partner_folder / "in").mkdir()
    (partner_folder / "out").mkdir()
    endpoint = SftpEndpoint(
        host=sshd.host,
        port=sshd.port,
        username=sshd.username,
        private_key=str(sshd.private_key),
        host_key=sshd.host_key,
        timeout=5,
    )
    return SftpOrderChannel(endpoint, inbound_dir=f"{partner_folder}/in", outbound_dir=f"{partner_folder}/out")


def order(version: int = 1, **kwargs) -> Order:
    data = CaseSystem("http://unused", "t", "0125").order(ORG, order_id="ORD-1", version=version, **kwargs)
    return Order.model_validate(data["payload"])


def test_an_order_is_written_as_its_file_and_a_resend_replaces_it(channel, partner_folder):
    receipt = channel.deliver(order())
    written = partner_folder / "in" / "order_ORD-1_1.xml"
    assert receipt.order_id == "ORD-1" and receipt.version == 1
    assert decode_order(written.read_bytes()) == order()
    channel.deliver(order())
    assert sorted(p.name for p in (partner_folder / "in").iterdir()) == ["order_ORD-1_1.xml"]
    channel.deliver(order(version=2, kind="amend"))
    assert sorted(p.name for p in (partner_folder / "in").iterdir()) == ["order_ORD-1_1.xml", "order_ORD-1_2.xml"]


def test_acknowledgement_files_are_handed_over_then_archived_or_failed(channel, partner_folder):
    good = OrderAcknowledgement(order_id="ORD-1", version=1, status="accepted", provider_org=ORG)
    (partner_folder / "out" / "ack_ORD-1_1.xml").write_bytes(encode_acknowledgement(good))
    (partner_folder / "out" / "ack_ORD-2_1.xml").write_bytes(b"<not an acknowledgement")
    (partner_folder / "out" / "ack_ORD-3_1.xml.part").write_bytes(b"still being written")
    taken = []

    def handle(data: bytes, name: str) -> None:
        taken.append((name, decode_acknowledgement(data)))

    assert channel.pick_up_acknowledgements(handle) == (1, 1)
    assert taken == [("ack_ORD-1_1.xml", good)]
    assert (partner_folder / "out" / "archive" / "ack_ORD-1_1.xml").exists()
    reason = (partner_folder / "out" / "failed" / "ack_ORD-2_1.xml.reason.txt").read_text()
    assert reason.strip()
    assert (partner_folder / "out" / "ack_ORD-3_1.xml.part").exists()  # never picked up half-written
    assert channel.pick_up_acknowledgements(handle) == (0, 0)


def test_a_refused_acknowledgement_goes_to_failed_with_the_reason(channel, partner_folder):
    ack = OrderAcknowledgement(order_id="ORD-9", version=1, status="accepted", provider_org=ORG)
    (partner_folder / "out" / "ack_ORD-9_1.xml").write_bytes(encode_acknowledgement(ack))

    def refuse(data: bytes, name: str) -> None:
        raise Rejected("unknown order ORD-9", where="order_id")

    assert channel.pick_up_acknowledgements(refuse) == (0, 1)
    assert "unknown order ORD-9" in (partner_folder / "out" / "failed" / "ack_ORD-9_1.xml.reason.txt").read_text()
