"""Orders as files over SFTP against a real OpenSSH sshd: order files out, ack files in, through the
SFTP transport and the one pickup loop."""

from __future__ import annotations

import hashlib
import random

import pytest

from adapters.channels import Pickup, pick_up
from adapters.order_forms import ACK_PATTERN, outgoing
from adapters.order_xml import decode_acknowledgement, decode_order, encode_acknowledgement
from adapters.sftp import SftpTransport
from core.errors import Rejected
from sandbox.case_system import CaseSystem
from schemas.identity import generate_organisation_number
from schemas.orders import Order, OrderAcknowledgement

ORG = generate_organisation_number(random.Random(3)).digits


@pytest.fixture
def channel(sshd, partner_folder):
    (partner_folder / "in").mkdir()
    (partner_folder / "out").mkdir()
    return SftpTransport(sshd.endpoint(), inbound_dir=f"{partner_folder}/in", outbound_dir=f"{partner_folder}/out")


def order(version: int = 1, **kwargs) -> Order:
    data = CaseSystem("http://unused", "t", "0125").order(ORG, order_id="ORD-1", version=version, **kwargs)
    return Order.model_validate(data["payload"])


def test_an_order_is_written_as_its_file_and_a_resend_replaces_it(channel, partner_folder):
    receipt = channel.send(outgoing(order()))
    written = partner_folder / "in" / "order_ORD-1_1.xml"
    assert receipt.name == "order_ORD-1_1.xml" and receipt.size == written.stat().st_size
    assert receipt.sha256 == hashlib.sha256(written.read_bytes()).hexdigest()
    assert decode_order(written.read_bytes()) == order()
    channel.send(outgoing(order()))
    assert sorted(p.name for p in (partner_folder / "in").iterdir()) == ["order_ORD-1_1.xml"]
    channel.send(outgoing(order(version=2, kind="amend")))
    assert sorted(p.name for p in (partner_folder / "in").iterdir()) == ["order_ORD-1_1.xml", "order_ORD-1_2.xml"]


def test_acknowledgement_files_are_handed_over_then_archived_or_failed(channel, partner_folder):
    good = OrderAcknowledgement(order_id="ORD-1", version=1, status="accepted", provider_org=ORG)
    (partner_folder / "out" / "ack_ORD-1_1.xml").write_bytes(encode_acknowledgement(good))
    (partner_folder / "out" / "ack_ORD-2_1.xml").write_bytes(b"<not an acknowledgement")
    (partner_folder / "out" / "ack_ORD-3_1.xml.part").write_bytes(b"still being written")
    taken = []

    def handle(name: str, file) -> None:
        taken.append((name, decode_acknowledgement(file.read())))

    done = pick_up(channel, ACK_PATTERN, handle, done_suffix=None)
    assert (done.archived, [name for name, _reason in done.failed]) == (["ack_ORD-1_1.xml"], ["ack_ORD-2_1.xml"])
    assert taken == [("ack_ORD-1_1.xml", good)]
    assert (partner_folder / "out" / "archive" / "ack_ORD-1_1.xml").exists()
    reason = (partner_folder / "out" / "failed" / "ack_ORD-2_1.xml.reason.txt").read_text()
    assert reason.strip()
    assert (partner_folder / "out" / "ack_ORD-3_1.xml.part").exists()  # never picked up half-written
    assert pick_up(channel, ACK_PATTERN, handle, done_suffix=None) == Pickup()


def test_a_refused_acknowledgement_goes_to_failed_with_the_reason(channel, partner_folder):
    ack = OrderAcknowledgement(order_id="ORD-9", version=1, status="accepted", provider_org=ORG)
    (partner_folder / "out" / "ack_ORD-9_1.xml").write_bytes(encode_acknowledgement(ack))

    def refuse(name: str, file) -> None:
        raise Rejected("unknown order ORD-9", where="order_id")

    assert pick_up(channel, ACK_PATTERN, refuse, done_suffix=None).failed == [
        ("ack_ORD-9_1.xml", "order_id: unknown order ORD-9")
    ]
    assert "unknown order ORD-9" in (partner_folder / "out" / "failed" / "ack_ORD-9_1.xml.reason.txt").read_text()
