"""Three simulated LOV providers, one on each channel, that acknowledge every order they take:
over SOAP (AcknowledgeOrder on the hub), over REST, and as ack files on their SFTP server."""

from __future__ import annotations

import os
import random
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx
import requests
import zeep

from adapters.order_xml import decode_order, encode_acknowledgement
from sandbox.rest_provider import create_rest_provider_app
from sandbox.server import LiveServer
from sandbox.sftp_server import SandboxSftpServer
from sandbox.soap_provider import create_provider_app
from schemas.identity import generate_organisation_number
from schemas.orders import Order, OrderAcknowledgement

CONTACT = "Kontakt Testsson"


class SimulatedProviders:
    """`with SimulatedProviders(tenant) as providers:` serves them; `partners_toml()` configures the hub."""

    def __init__(self, tenant: str, *, seed: int = 5) -> None:
        rng = random.Random(seed)
        self.tenant = tenant
        self.orgs = {channel: generate_organisation_number(rng).digits for channel in ("soap", "rest", "sftp")}
        self.tokens = {channel: f"sandbox-{channel}-{rng.getrandbits(64):x}" for channel in ("soap", "rest", "sftp")}
        self.rest_token = f"sandbox-hub-calls-rest-{rng.getrandbits(64):x}"
        self.soap_app = create_provider_app()
        self.rest_app = create_rest_provider_app(token=self.rest_token)
        self.sftp_root = Path(tempfile.mkdtemp(prefix="casehub-sftp-provider-"))
        for folder in ("inbound", "outbound"):
            (self.sftp_root / folder).mkdir()
        self._acknowledged: set[tuple[str, str, int]] = set()
        self._zeep: zeep.Client | None = None
        self._stack = ExitStack()

    def __enter__(self) -> SimulatedProviders:
        self.soap = self._stack.enter_context(LiveServer(self.soap_app))
        self.rest = self._stack.enter_context(LiveServer(self.rest_app))
        self.sftp = self._stack.enter_context(SandboxSftpServer(self.sftp_root))
        self.environment = {
            **{self._env(channel): token for channel, token in self.tokens.items()},
            f"CASEHUB_SANDBOX_{self.tenant}_REST_OUT": self.rest_token,
            f"CASEHUB_SANDBOX_{self.tenant}_SFTP_KEY": str(self.sftp.private_key_path),
        }
        os.environ.update(self.environment)
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _env(self, channel: str) -> str:
        return f"CASEHUB_SANDBOX_{self.tenant}_{channel.upper()}_TOKEN"

    def partners_toml(self, ports: dict[str, int] | None = None) -> str:
        """The three providers as partners of the tenant in the hub's configuration; `ports` (by
        channel) sends the hub to other ports of 127.0.0.1, e.g. a proxy's that a test cuts."""
        port = {"soap": self.soap.port, "rest": self.rest.port, "sftp": self.sftp.port} | (ports or {})
        return f"""
[[tenants.partners]]
id = "soap-omsorg"
kind = "provider"
organisation_number = "{self.orgs["soap"]}"
token_env = "{self._env("soap")}"
channel = {{ type = "soap", url = "http://127.0.0.1:{port["soap"]}/soap", timeout = 5 }}

[[tenants.partners]]
id = "rest-hemtjanst"
kind = "provider"
organisation_number = "{self.orgs["rest"]}"
token_env = "{self._env("rest")}"
channel = {{ type = "rest", url = "http://127.0.0.1:{port["rest"]}", \
token_env = "CASEHUB_SANDBOX_{self.tenant}_REST_OUT", \
timeout = 5 }}

[[tenants.partners]]
id = "sftp-vard"
kind = "provider"
organisation_number = "{self.orgs["sftp"]}"
token_env = "{self._env("sftp")}"
channel = {{ type = "sftp", host = "127.0.0.1", port = {port["sftp"]}, username = "{self.sftp.username}", \
private_key_env = "CASEHUB_SANDBOX_{self.tenant}_SFTP_KEY", host_key = "{self.sftp.host_key_line}", \
inbound_dir = "inbound", outbound_dir = "outbound", timeout = 5 }}
"""

    def taken(self) -> dict[str, list[Order]]:
        """The orders each provider has taken so far, by channel."""
        files = sorted((self.sftp_root / "inbound").glob("order_*.xml"))
        rest = [
            Order.model_validate_json(raw)
            for method, _path, raw in self.rest_app.state.received
            if method in ("POST", "PUT") and raw
        ]
        return {
            "soap": [r.order for r in self.soap_app.state.received],
            "rest": [o for o in rest if (o.order_id, o.version) in self.rest_app.state.orders],
            "sftp": [decode_order(f.read_bytes()) for f in files],
        }

    def raw_bytes(self) -> list[bytes]:
        """Every byte string the providers received, for checking what left the hub."""
        return (
            [r.raw for r in self.soap_app.state.received]
            + [raw for *_, raw in self.rest_app.state.received]
            + [f.read_bytes() for f in (self.sftp_root / "inbound").glob("order_*.xml")]
        )

    def acknowledge(self, hub_url: str) -> int:
        """Each provider accepts the newest version of every order it has taken and not yet answered."""
        sent = 0
        for channel, taken in self.taken().items():
            newest = {}
            for order in taken:
                if order.version > newest.get(order.order_id, order).version or order.order_id not in newest:
                    newest[order.order_id] = order
            for order in newest.values():
                key = (channel, order.order_id, order.version)
                if key in self._acknowledged:
                    continue
                ack = OrderAcknowledgement(
                    order_id=order.order_id,
                    version=order.version,
                    status="accepted",
                    contact_person=CONTACT,
                    provider_org=self.orgs[channel],
                )
                getattr(self, f"_ack_{channel}")(hub_url, ack)
                self._acknowledged.add(key)
                sent += 1
        return sent

    def _ack_soap(self, hub_url: str, ack: OrderAcknowledgement) -> None:
        if self._zeep is None:  # a real provider builds its client once: the WSDL is fetched once
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {self.tokens['soap']}"
            self._zeep = zeep.Client(f"{hub_url}/soap/lov?wsdl", transport=zeep.Transport(session=session, timeout=10))
        self._zeep.service.AcknowledgeOrder(**{k: v for k, v in ack.model_dump().items() if v is not None})

    def _ack_rest(self, hub_url: str, ack: OrderAcknowledgement) -> None:
        httpx.post(
            f"{hub_url}/api/v1/orders/{ack.order_id}/acknowledgement",
            content=ack.model_dump_json(),
            headers={"Authorization": f"Bearer {self.tokens['rest']}", "Content-Type": "application/json"},
            timeout=10,
        ).raise_for_status()

    def _ack_sftp(self, _hub_url: str, ack: OrderAcknowledgement) -> None:
        target = self.sftp_root / "outbound" / f"ack_{ack.order_id}_{ack.version}.xml"
        part = target.with_name(target.name + ".part")
        part.write_bytes(encode_acknowledgement(ack))
        part.replace(target)
