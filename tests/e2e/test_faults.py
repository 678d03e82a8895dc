"""Faults injected while the case system keeps posting: every process recovers by itself.

The hub runs as IT operations runs it (`casehub serve`, and `casehub worker` at scale) against a
RabbitMQ node and a PostgreSQL cluster of the suite's own, which the tests stop, crash and wipe;
the machine's shared services are never touched. Each test asserts that every event answered 2xx
is processed exactly once, that no process needed a restart (but the ones killed), and that no
personnummer reached a log.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import subprocess
import time
from contextlib import ExitStack

import httpx
import paramiko
import psycopg
import pytest

from adapters.order_forms import outgoing
from adapters.order_xml import decode_order
from adapters.sftp import SftpConnection, SftpEndpoint, SftpTransport
from core.errors import Transient
from flows.orders.tables import orders as orders_table
from sandbox.case_system import CaseSystem
from sandbox.demo import CONFIG, TENANT, TOKEN_ENV
from sandbox.providers import SimulatedProviders
from schemas.identity import generate_organisation_number
from schemas.orders import Order
from tests.conftest import wait_for
from tests.e2e.conftest import REQUIRE_SERVICES
from tests.e2e.hub import (
    CaseSystemStream,
    HubProcesses,
    Outcome,
    assert_no_personnummer,
    assert_processed_exactly_once,
    assert_said,
    outage_of,
)
from tests.e2e.services import TcpProxy
from tests.sshd import Sshd, SshdMissing, running_sshd, sshd_binary

TOKEN = "e2e-case-system-token"
_numbers = itertools.count(1)


@pytest.fixture
def scale(private_postgres, private_rabbitmq):
    """(database URL, broker URL): a database and a virtual host of this test's own on the private servers."""
    name = f"e2e_{next(_numbers)}"
    with psycopg.connect(private_postgres.conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    add_vhost(private_rabbitmq, name)
    database = private_postgres.url.rsplit("/", 1)[0] + f"/{name}"
    return database, private_rabbitmq.url.replace("/%2F", f"/{name}"), name


def add_vhost(node, name: str) -> None:
    """What an operator's provisioning does on a new node: the virtual host, and guest's rights on it."""
    for args in (("add_vhost", name), ("set_permissions", "-p", name, "guest", ".*", ".*", ".*")):
        done = node.rabbitmqctl(*args)
        assert done.returncode == 0 or "already exists" in done.stderr, done.stderr


@pytest.fixture
def hub_at_scale(tmp_path, scale):
    database, broker, _ = scale
    hub = HubProcesses(tmp_path, database_url=database, broker_url=broker, config=CONFIG, environ={TOKEN_ENV: TOKEN})
    outcome = Outcome(database)
    yield hub, outcome
    hub.stop()
    outcome.close()
    assert_no_personnummer(hub.logs())


def case_events(count: int, seed: int) -> list[dict]:
    case_system = CaseSystem("http://unused", TOKEN, TENANT, seed=seed)
    return [case_system.event() for _ in range(count)]


def settle(outcome: Outcome, stream: CaseSystemStream, timeout: float = 60) -> None:
    stream.wait(timeout)
    wait_for(
        lambda: outcome.echoed() >= len(stream.echoed()),
        timeout=timeout,
        what=f"all {len(stream.echoed())} answered events processed",
    )
    assert_processed_exactly_once(outcome, stream)


def test_kill_9_of_a_worker_and_of_serve(hub_at_scale):
    hub, outcome = hub_at_scale
    hub.start("serve")
    hub.start("worker")
    stream = CaseSystemStream(hub.url, TOKEN, case_events(600, seed=11), rate=80).start()
    wait_for(lambda: outcome.echoed() >= 150, timeout=60, what="150 events processed")
    hub.kill("worker")
    hub.start("worker")
    wait_for(lambda: len(stream.answered) >= 400, timeout=60, what="400 events answered")
    hub.kill("serve")
    hub.start("serve")
    settle(outcome, stream)
    assert len(stream.answered) == 600
    said = hub.logs()
    assert f"listening on http://127.0.0.1:{hub.port}" in said and "guest:guest" not in said
    assert any(a.status == 0 for a in stream.answers), "serve was killed: some request must have gone unanswered"


def test_rabbitmq_stopped_and_started(hub_at_scale, private_rabbitmq):
    hub, outcome = hub_at_scale
    hub.start("serve")
    hub.start("worker")
    stream = CaseSystemStream(hub.url, TOKEN, case_events(500, seed=12), rate=40).start()
    wait_for(lambda: outcome.echoed() >= 100, timeout=60, what="100 events processed")
    private_rabbitmq.stop()
    down = time.monotonic()
    time.sleep(8)
    at_restart = len(stream.answered)
    private_rabbitmq.start()
    up = time.monotonic()
    settle(outcome, stream)
    during = stream.posted_while(down, up)
    assert during and all(a.status == 202 for a in during if a.what == "post"), "store first: intake goes on"
    assert at_restart > 100 + 100, "the case system's events were taken while RabbitMQ was down"
    assert hub.alive() and hub.starts == {"serve": 1, "worker": 1}
    assert_said(hub, *outage_of("outbox relay", "AMQP inbound"))


def test_rabbitmq_reset_loses_its_definitions(hub_at_scale, private_rabbitmq, scale):
    hub, outcome = hub_at_scale
    hub.start("serve")
    hub.start("worker")
    stream = CaseSystemStream(hub.url, TOKEN, case_events(400, seed=13), rate=40).start()
    wait_for(lambda: outcome.echoed() >= 100, timeout=60, what="100 events processed")
    private_rabbitmq.reset()  # a new node: no exchanges, no queues, no messages
    add_vhost(private_rabbitmq, scale[2])
    settle(outcome, stream)
    assert hub.alive() and hub.starts == {"serve": 1, "worker": 1}


def test_postgresql_crashed_and_started(hub_at_scale, private_postgres):
    hub, outcome = hub_at_scale
    hub.start("serve")
    hub.start("worker")
    stream = CaseSystemStream(hub.url, TOKEN, case_events(400, seed=14), rate=40).start()
    wait_for(lambda: outcome.echoed() >= 100, timeout=60, what="100 events processed")
    outcome.engine.dispose()
    private_postgres.crash()
    down = time.monotonic()
    time.sleep(3)
    ready = httpx.get(f"{hub.url}/readyz", timeout=10)
    assert ready.status_code == 503 and ready.json()["store"] != "ok"
    time.sleep(5)
    private_postgres.start()
    up = time.monotonic()
    settle(outcome, stream)
    during = [a for a in stream.posted_while(down, up) if a.what == "post"]
    assert {a.status for a in during} <= {202, 503}, "a store outage is 503, never 500"
    assert any(a.status == 503 for a in during)
    assert httpx.get(f"{hub.url}/readyz", timeout=10).status_code == 200
    assert hub.alive() and hub.starts == {"serve": 1, "worker": 1}
    assert_said(hub, *outage_of("outbox relay", "scheduler", "http intake"))


PROVIDERS = ("soap-omsorg", "rest-hemtjanst", "sftp-vard")
"""The partner ids of sandbox.providers.SimulatedProviders."""
PROVIDER_OUTAGE = float(os.environ.get("CASEHUB_E2E_PROVIDER_OUTAGE", "60"))
"""Seconds every provider is down in the provider test (the issue asks for a minute)."""


def test_every_provider_down_for_a_minute_holds_up_nothing_else(tmp_path, scale):
    """The three providers (SOAP, REST, SFTP) are unreachable for a minute while two hubs, one on
    SQLite and one on PostgreSQL, go on taking the case system's events and orders and answering its
    feed reads: every request is answered within a second, and once the providers are back every
    order reaches its provider once, none refused."""
    with SimulatedProviders(TENANT) as providers, ExitStack() as stack:
        proxies = {
            channel: stack.enter_context(TcpProxy(("127.0.0.1", server.port)))
            for channel, server in (("soap", providers.soap), ("rest", providers.rest), ("sftp", providers.sftp))
        }
        config = CONFIG + providers.partners_toml({c: p.port for c, p in proxies.items()})
        rate, seconds = 15, PROVIDER_OUTAGE + 15
        runs = []
        for store, (database, broker) in {
            "sqlite": (f"sqlite:///{tmp_path / 'hub.db'}", "memory://"),
            "postgresql": scale[:2],
        }.items():
            workdir = tmp_path / store
            workdir.mkdir()
            hub = HubProcesses(
                workdir,
                database_url=database,
                broker_url=broker,
                config=config,
                environ={TOKEN_ENV: TOKEN} | providers.environment,
            )
            outcome = Outcome(database)
            stack.callback(outcome.close)
            stack.callback(hub.stop)
            hub.start("serve")
            if store == "postgresql":
                hub.start("worker")
            events, orders = _events_and_orders(providers, int(rate * seconds), seed=len(runs) + 15)
            runs.append((store, hub, outcome, orders, CaseSystemStream(hub.url, TOKEN, events, rate=rate)))
        for *_, stream in runs:
            stream.start()
        time.sleep(5)
        for proxy in proxies.values():
            proxy.cut_after(server_bytes=0, client_bytes=0)  # every new connection dropped at once
            proxy.cut_all()
        down = time.monotonic()
        time.sleep(PROVIDER_OUTAGE)
        for proxy in proxies.values():
            proxy.heal()
        up = time.monotonic()

        def taken() -> dict[str, list[str]]:
            return {channel: [o.order_id for o in found] for channel, found in providers.taken().items()}

        for store, hub, outcome, orders, stream in runs:
            stream.wait(seconds + 60)
            wait_for(
                lambda: all(set(orders[c]) <= set(taken()[c]) for c in orders),
                timeout=60,
                what=f"every order of the hub on {store} at its provider",
            )
            slow = [
                (a.what, a.status, round(a.seconds, 2), f"{a.at - down:+.1f} s")
                for a in stream.answers
                if a.seconds >= 1
            ]
            assert not slow, (
                f"{store}: {len(slow)} requests took a second or more (from the outage's start): {slow[:5]}"
            )
            assert all(a.status in (200, 202) for a in stream.answers)
            # posted all through the outage, with no gap: how many times depends on how fast this
            # machine runs the test's client (asked for 15 a second, it managed 10 on a loaded CI run)
            times = [down, *(a.at for a in stream.posted_while(down, up) if a.what == "post"), up]
            gap = max(later - earlier for earlier, later in itertools.pairwise(times))
            assert gap < 2, f"{store}: the case system posted nothing for {gap:.1f} s during the outage"
            assert outcome.count(orders_table, orders_table.c.state == "refused") == 0
            settle(outcome, stream)
            assert hub.alive() and set(hub.starts.values()) == {1}
            assert_said(
                hub,
                *[
                    f"partner {TENANT}/{partner} {said}"
                    for partner in PROVIDERS
                    for said in ("is down", "answers again")
                ],
            )
            assert_no_personnummer(hub.logs())
        for channel in ("soap", "rest"):  # an SFTP file of the same name replaces: a repeat is not seen there
            assert sorted(taken()[channel]) == sorted(set(taken()[channel])), f"an order reached {channel} twice"


def _events_and_orders(providers: SimulatedProviders, count: int, seed: int) -> tuple[list[dict], dict]:
    """Case events with an order to one of the three providers in turn every tenth."""
    case_system = CaseSystem("http://unused", TOKEN, TENANT, seed=seed)
    events, orders = [], {channel: [] for channel in ("soap", "rest", "sftp")}
    for n in range(count):
        if n % 10 == 5:
            channel = list(orders)[n // 10 % 3]
            events.append(case_system.order(providers.orgs[channel]))
            orders[channel].append(events[-1]["payload"]["order_id"])
        else:
            events.append(case_system.event())
    return events, orders


class KillableSshd:
    """The tests' sshd (tests/sshd.py), killed with SIGKILL (the listener and every session) and
    started again on the same port with the same keys."""

    def __init__(self, server: Sshd) -> None:
        self.server = server
        self.process: subprocess.Popen | None = None

    def kill(self) -> None:
        pid = self.process.pid if self.process is not None else int((self.server.workdir / "sshd.pid").read_text())
        os.killpg(pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def start(self) -> None:
        log = (self.server.workdir / "sshd.log").open("ab")
        self.process = subprocess.Popen(
            [sshd_binary(), "-D", "-e", "-f", str(self.server.workdir / "sshd_config")],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        wait_for(lambda: _answers(self.server.port), timeout=10, what="sshd again")

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def provider_sshd(tmp_path):
    try:
        sshd_binary()
    except SshdMissing as missing:
        if REQUIRE_SERVICES:
            pytest.fail(f"{missing} and CASEHUB_REQUIRE_SERVICES=1")
        pytest.skip(str(missing))
    with running_sshd(tmp_path / "sshd") as server:
        for folder in ("in", "out"):
            (server.root / folder).mkdir()
        yield server


def sftp_provider_toml(server: Sshd, org: str, port: int | None = None) -> str:
    return f"""
[[tenants.partners]]
id = "sftp-vard"
kind = "provider"
organisation_number = "{org}"
channel = {{ type = "sftp", host = "127.0.0.1", port = {port or server.port}, username = "{server.username}", \
private_key_env = "CASEHUB_E2E_SFTP_KEY", host_key = "{server.host_key}", inbound_dir = "{server.root}/in", \
outbound_dir = "{server.root}/out", timeout = 5 }}
"""


def test_sshd_killed_during_deliveries(tmp_path, provider_sshd):
    """sshd and every session of it killed in the middle of a stream of orders, then started again:
    every order is delivered, none refused, no partial file left where the provider reads."""
    org = generate_organisation_number(random.Random(21)).digits
    database = f"sqlite:///{tmp_path / 'hub.db'}"
    hub = HubProcesses(
        tmp_path,
        database_url=database,
        broker_url="memory://",
        config=CONFIG + sftp_provider_toml(provider_sshd, org),
        environ={TOKEN_ENV: TOKEN, "CASEHUB_E2E_SFTP_KEY": str(provider_sshd.private_key)},
    )
    outcome, sshd = Outcome(database), KillableSshd(provider_sshd)
    try:
        hub.start("serve")
        case_system = CaseSystem("http://unused", TOKEN, TENANT, seed=16)
        events = [case_system.order(org) if n % 2 else case_system.event() for n in range(400)]
        orders = {e["payload"]["order_id"] for e in events if e["type"] == "order.issued"}
        stream = CaseSystemStream(hub.url, TOKEN, events, rate=40).start()
        inbound = provider_sshd.root / "in"
        wait_for(lambda: len(list(inbound.glob("order_*.xml"))) >= 40, timeout=60, what="40 orders delivered")
        sshd.kill()
        time.sleep(3)
        sshd.start()
        settle(outcome, stream)
        wait_for(
            lambda: {decode_order(f.read_bytes()).order_id for f in inbound.glob("order_*.xml")} == orders,
            timeout=60,
            what="every order delivered",
        )
        assert not list(inbound.glob("*.part")), "a partial file was left where the provider reads"
        assert outcome.count(orders_table, orders_table.c.state != "delivered") == 0
        assert_said(hub)  # a short outage: the channel's own retries may bridge it, the breaker stays shut
        assert hub.alive() and hub.starts == {"serve": 1}
    finally:
        sshd.close()
        hub.stop()
        outcome.close()
    assert_no_personnummer(hub.logs())


def test_a_connection_cut_at_each_step_of_the_ssh_handshake_is_transient(provider_sshd):
    """A TCP proxy between the hub and sshd cuts the connection after so many bytes: in the server's
    banner, after it, in the key exchange, in authentication. Each is Transient (tried again later),
    never the provider's refusal of the order nor the hub's misconfiguration; healed, it delivers."""
    order = Order.model_validate(
        CaseSystem("http://unused", TOKEN, TENANT, seed=17).order(
            generate_organisation_number(random.Random(22)).digits
        )["payload"]
    )
    with TcpProxy(("127.0.0.1", provider_sshd.port)) as proxy:
        endpoint = SftpEndpoint(
            host="127.0.0.1",
            port=proxy.port,
            username=provider_sshd.username,
            private_key=str(provider_sshd.private_key),
            host_key=provider_sshd.host_key,
            timeout=5,
        )
        channel = SftpTransport(
            endpoint, inbound_dir=f"{provider_sshd.root}/in", outbound_dir=f"{provider_sshd.root}/out"
        )
        banner, kex, login, sftp = _handshake_steps(proxy, provider_sshd)
        print(f"server bytes at the end of: banner {banner}, key exchange {kex}, login {login}, SFTP open {sftp}")
        steps = {
            "in the banner": banner // 2,
            "after the banner": banner,
            "in the key exchange": (banner + kex) // 2,
            "at the end of the key exchange": kex - 1,
            "in authentication": (kex + login) // 2,
            "at the last byte of the login": login - 1,
            "opening the SFTP channel": (login + sftp) // 2,
        }
        cuts = [(f"server {step}", {"server_bytes": cut}) for step, cut in steps.items()] + [
            ("in the client's banner", {"client_bytes": 10}),
            ("in the client's key exchange", {"client_bytes": 600}),
        ]
        for step, cut in cuts:
            proxy.cut_after(**cut)
            before = proxy.accepted
            with pytest.raises(Transient):
                with SftpConnection(endpoint, attempts=2, backoff=0.05):
                    pass
            assert proxy.accepted == before + 2, f"cut {step}: not tried again"
        proxy.heal()
        assert channel.send(outgoing(order)).name == f"order_{order.order_id}_{order.version}.xml"
    assert (provider_sshd.root / "in" / f"order_{order.order_id}_{order.version}.xml").exists()


def _handshake_steps(proxy: TcpProxy, server: Sshd) -> tuple[int, int, int, int]:
    """The server's bytes through the proxy at the end of each step of one SSH login: its banner,
    the key exchange, authentication, and the SFTP channel open."""
    start = proxy.bytes_from_server
    transport = paramiko.Transport(proxy.address)
    try:
        transport.start_client(timeout=5)  # returns once the keys are exchanged
        kex = proxy.bytes_from_server - start
        transport.auth_publickey(server.username, paramiko.Ed25519Key.from_private_key_file(str(server.private_key)))
        login = proxy.bytes_from_server - start
        transport.open_sftp_client().close()
        sftp = proxy.bytes_from_server - start
    finally:
        transport.close()
    banner = len(transport.remote_version) + 2  # and CR LF
    return banner, kex, login, sftp
