"""The order flow end to end on `MemoryChannel`, with no network: the embedded hub (SQLite, the
in-process broker) delivers to a provider that is a handler function, records each transfer, and
picks up the provider's acknowledgement files through the one pickup loop."""

from __future__ import annotations

import hashlib
import random

import pytest
from sqlalchemy import select

from adapters.channels import installed
from adapters.memory import MemoryChannel
from adapters.order_xml import decode_order, encode_acknowledgement
from adapters.transport import Outgoing
from core.config import HubConfig
from core.errors import Rejected, Transient
from core.store.tables import audit
from core.transfers import transfers
from flows.orders.acknowledgements import pick_up_sftp_acknowledgements
from sandbox.case_system import CaseSystem
from schemas.identity import generate_organisation_number
from schemas.orders import OrderAcknowledgement
from tests.conftest import TENANT, TOKEN, TOKEN_ENV, one_tenant, wait_for
from tests.flows.orders import issue, row, statuses

ORG = generate_organisation_number(random.Random(31)).digits
pytestmark = pytest.mark.parametrize("runtime", ["embedded"], indirect=True)


@pytest.fixture
def hub_config(monkeypatch) -> HubConfig:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return one_tenant(
        {
            "id": "memory-ab",
            "kind": "provider",
            "organisation_number": ORG,
            "token_env": "CASEHUB_TEST_UNUSED",
            "channel": {"type": "rest", "url": "http://provider.invalid", "token_env": "UNSET"},
        },
    )


class Provider:
    """A provider as a handler: refuses orders whose instructions say REJECT, is down when told."""

    def __init__(self) -> None:
        self.down = 0

    def __call__(self, item: Outgoing) -> None:
        if self.down:
            self.down -= 1
            raise Transient("the provider is down")
        if b"REJECT" in item.data:
            raise Rejected("the instructions say REJECT", where="instructions")


@pytest.fixture
def provider():
    handler = Provider()
    channel = MemoryChannel(handler)
    with installed({"memory-ab": channel}):
        yield handler, channel


def test_orders_go_out_and_acknowledgements_come_back_on_a_memory_channel(provider, make_hub):
    handler, channel = provider
    handler.down = 1  # the first call finds the provider down: its breaker pauses it for 1 s, the bus retries
    hub = make_hub(retry_max=20)
    case_system = CaseSystem("http://unused", TOKEN, TENANT)
    order = case_system.order(ORG, protected=True)
    refused = case_system.order(ORG, instructions="please REJECT this")
    order_id, refused_id = order["payload"]["order_id"], refused["payload"]["order_id"]
    issue(hub, order, refused)

    wait_for(lambda: (r := row(hub, order_id)) and r.state == "delivered", what="the delivery")
    wait_for(lambda: (r := row(hub, refused_id)) and r.state == "refused", what="the refusal")
    assert [item.name for item in channel.sent] == [f"order_{order_id}_1.xml"]
    delivered = decode_order(channel.sent[0].data)
    assert delivered.person.protected_identity and delivered.person.address is None
    assert channel.sent[0].rest.method == "POST" and channel.sent[0].soap.operation == "SubmitOrder"
    with hub.store.begin() as conn:
        recorded = conn.execute(select(transfers)).one()
        audited = conn.execute(select(audit.c.subject).where(audit.c.action == "order.transfer")).scalars().all()
    assert (recorded.name, recorded.partner, recorded.channel) == (f"order_{order_id}_1.xml", "memory-ab", "memory")
    assert (recorded.size, recorded.sha256) == (
        len(channel.sent[0].data),
        hashlib.sha256(channel.sent[0].data).hexdigest(),
    )
    assert audited == [f"order:{order_id}"]

    ack = OrderAcknowledgement(order_id=order_id, version=1, status="accepted", provider_org=ORG)
    stranger = OrderAcknowledgement(order_id="ORD-UNKNOWN", version=1, status="accepted", provider_org=ORG)
    channel.drop(f"ack_{order_id}_1.xml", encode_acknowledgement(ack), done_suffix=None)
    channel.drop("ack_ORD-UNKNOWN_1.xml", encode_acknowledgement(stranger), done_suffix=None)
    channel.drop("ack_half.xml.part", b"<still being written", done_suffix=None)
    assert pick_up_sftp_acknowledgements(hub.jobs, hub.config.tenant(TENANT)) == 1
    assert row(hub, order_id).state == "accepted"
    assert list(channel.archived) == [f"ack_{order_id}_1.xml"]
    assert channel.failed == {"ack_ORD-UNKNOWN_1.xml": "order_id: unknown order ORD-UNKNOWN"}
    assert list(channel.files) == ["ack_half.xml.part"]
    wait_for(lambda: statuses(hub, order_id) == ["delivered", "accepted"], what="the case system told")
    assert statuses(hub, refused_id) == ["rejected"]
