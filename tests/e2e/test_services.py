"""The fault-injection harness does what it says: a private RabbitMQ that keeps a persistent message
across a stop, comes back after a kill and forgets everything on reset; a private PostgreSQL that
keeps a committed row across a crash; a TCP proxy that forwards, and cuts where it is told."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from contextlib import closing

import paramiko
import pika
import psycopg
import pytest
import sqlalchemy as sa

from tests.e2e.services import PrivatePostgres, TcpProxy


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


# --- RabbitMQ ----------------------------------------------------------------------------------


def amqp(node) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(node.url))


def publish_persistent(node, queue: str, body: bytes) -> None:
    """A persistent message on a durable queue, confirmed by the broker (so on its disk)."""
    with closing(amqp(node)) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.queue_declare(queue, durable=True)
        channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2), mandatory=True)


def messages_in(node, queue: str) -> int | None:
    """How many messages the queue holds; None when it does not exist."""
    with closing(amqp(node)) as conn:
        try:
            return conn.channel().queue_declare(queue, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker as closed:
            assert closed.reply_code == 404
            return None


def take(node, queue: str) -> bytes | None:
    with closing(amqp(node)) as conn:
        channel = conn.channel()
        _, _, body = channel.basic_get(queue, auto_ack=True)
        return body


def test_the_private_node_is_not_the_shared_one(private_rabbitmq):
    node = private_rabbitmq
    assert node.port != 5672 and node.nodename.startswith("casehub-e2e-") and node.nodename.endswith("@localhost")
    assert node.url == f"amqp://guest:guest@127.0.0.1:{node.port}/%2F"
    status = node.rabbitmqctl("status")
    assert status.returncode == 0, status.stderr
    assert node.nodename in status.stdout and "Enabled plugins:" in status.stdout
    assert f"127.0.0.1, port: {node.port}" in status.stdout  # AMQP on its own port only


def test_a_persistent_message_survives_a_stop_and_a_start(private_rabbitmq):
    node, queue = private_rabbitmq, f"durable-{uuid.uuid4().hex[:8]}"
    publish_persistent(node, queue, b"kept")
    node.stop()
    assert not node.running and node.processes() == [] and refused(node.port)
    node.start()
    assert messages_in(node, queue) == 1
    assert take(node, queue) == b"kept"
    print(f"RabbitMQ stop {node.timings['stop']:.2f} s, start {node.timings['start']:.2f} s")


def test_reset_forgets_every_queue_and_message(private_rabbitmq):
    node, queue = private_rabbitmq, f"wiped-{uuid.uuid4().hex[:8]}"
    publish_persistent(node, queue, b"gone")
    assert messages_in(node, queue) == 1
    node.reset()
    assert messages_in(node, queue) is None
    print(f"RabbitMQ reset {node.timings['reset']:.2f} s")


def test_after_a_kill_the_node_comes_back_with_what_it_confirmed(private_rabbitmq):
    node, queue = private_rabbitmq, f"killed-{uuid.uuid4().hex[:8]}"
    publish_persistent(node, queue, b"confirmed")
    beam = node.beam_pid()
    assert beam is not None and alive(beam)
    node.kill()
    assert not alive(beam) and node.processes() == [] and refused(node.port)
    node.start()
    assert take(node, queue) == b"confirmed"
    print(f"RabbitMQ kill {node.timings['kill']:.2f} s, start {node.timings['start']:.2f} s")


# --- PostgreSQL --------------------------------------------------------------------------------


def test_a_committed_row_survives_a_crash_and_an_open_connection_sees_it(private_postgres):
    cluster = private_postgres
    port = cluster.port
    with psycopg.connect(cluster.conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE crash_probe (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO crash_probe VALUES (1, 'committed')")
    during = psycopg.connect(cluster.conninfo, autocommit=True)
    during.execute("SELECT 1")
    members = cluster.processes()
    assert len(members) >= 3  # runuser or postgres, the postmaster, its background workers

    cluster.crash()
    assert cluster.processes() == [] and not any(alive(pid) for pid in members) and refused(port)
    began = time.monotonic()
    cluster.start()
    print(f"PostgreSQL crash {cluster.timings['crash']:.2f} s, then start {time.monotonic() - began:.2f} s")

    assert cluster.port == port
    assert "automatic recovery in progress" in cluster.log_tail()  # a real crash, not a shutdown
    with pytest.raises(psycopg.OperationalError):
        during.execute("SELECT 1")
    during.close()
    engine = sa.create_engine(cluster.url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT id, note FROM crash_probe").all() == [(1, "committed")]
    engine.dispose()


def test_a_stopped_cluster_refuses_and_starts_again(private_postgres):
    cluster = private_postgres
    cluster.stop()
    assert cluster.processes() == [] and refused(cluster.port)
    cluster.start()
    with psycopg.connect(cluster.conninfo) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_close_twice_leaves_no_process_and_no_data(private_postgres, tmp_path):
    cluster = PrivatePostgres(tmp_path)  # private_postgres: only to skip where PostgreSQL is missing
    cluster.start()
    pids = cluster.processes()
    assert pids
    print(f"PostgreSQL initdb {cluster.timings['initdb']:.2f} s, first start {cluster.timings['start']:.2f} s")
    cluster.close()
    cluster.close()
    assert cluster.processes() == [] and not any(alive(pid) for pid in pids)
    assert not cluster.home.exists() and cluster.log_file.exists()


# --- TcpProxy ----------------------------------------------------------------------------------


class EchoServer:
    """Sends back what it receives; remembers how many bytes each connection brought."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.received: list[int] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.received.append(0)
            threading.Thread(target=self._echo, args=(conn, len(self.received) - 1), daemon=True).start()

    def _echo(self, conn: socket.socket, index: int) -> None:
        with conn:
            try:
                while data := conn.recv(65536):
                    self.received[index] += len(data)
                    conn.sendall(data)
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo):
    with TcpProxy(echo.address) as proxy:
        yield proxy


def connect(proxy: TcpProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=5)


def read_to_end(sock: socket.socket) -> bytes:
    """Everything until the other side closes (EOF or a reset)."""
    chunks = []
    try:
        while data := sock.recv(65536):
            chunks.append(data)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def test_the_proxy_forwards_both_ways_and_passes_a_half_close_on(proxy):
    payload = os.urandom(300_000)
    with connect(proxy) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)  # the echo server sees EOF, answers everything, closes
        assert read_to_end(sock) == payload
    assert proxy.accepted == 1
    assert proxy.bytes_from_client == proxy.bytes_from_server == len(payload)


def exchange(sock: socket.socket, data: bytes) -> bytes:
    """Sends data and reads as many bytes back, or what came before the connection closed."""
    sock.sendall(data)
    got = b""
    while len(got) < len(data) and (chunk := sock.recv(len(data) - len(got))):
        got += chunk
    return got


def test_cut_after_server_bytes_closes_new_connections_after_that_many(proxy):
    with connect(proxy) as before:
        assert exchange(before, b"hello") == b"hello"  # accepted by the proxy before the limit is set
        proxy.cut_after(server_bytes=10)
        with connect(proxy) as after:
            after.sendall(b"x" * 100)
            assert read_to_end(after) == b"x" * 10
        assert exchange(before, b"y" * 100) == b"y" * 100  # a connection opened before is left alone


def test_cut_after_client_bytes_lets_only_that_many_reach_the_server(proxy, echo):
    proxy.cut_after(client_bytes=7)
    with connect(proxy) as sock:
        sock.sendall(b"z" * 100)
        assert len(read_to_end(sock)) <= 7  # the echo of the 7 may be cut too
    deadline = time.monotonic() + 5
    while echo.received != [7] and time.monotonic() < deadline:  # the echo server's thread may lag
        time.sleep(0.01)
    assert echo.received == [7]


def test_cut_after_zero_closes_at_once(proxy, echo):
    proxy.cut_after(server_bytes=0)
    with connect(proxy) as sock:
        assert read_to_end(sock) == b""


def test_cut_all_drops_open_connections_and_heal_restores_forwarding(proxy):
    socks = [connect(proxy) for _ in range(3)]
    for sock in socks:
        assert exchange(sock, b"ping") == b"ping"
    assert proxy.open_connections == 3
    proxy.cut_all()
    for sock in socks:
        assert read_to_end(sock) == b""
        sock.close()
    proxy.cut_after(server_bytes=2)
    with connect(proxy) as sock:
        sock.sendall(b"abcd")
        assert read_to_end(sock) == b"ab"
    proxy.heal()
    with connect(proxy) as sock:
        sock.sendall(b"abcd")
        sock.shutdown(socket.SHUT_WR)
        assert read_to_end(sock) == b"abcd"
    assert proxy.accepted == 5


def test_close_leaves_no_thread_and_no_listener(echo):
    proxy = TcpProxy(echo.address)
    sock = connect(proxy)
    assert exchange(sock, b"hi") == b"hi"
    proxy.close()
    proxy.close()
    assert read_to_end(sock) == b""
    sock.close()
    assert not [t for t in threading.enumerate() if t.name.startswith(f"tcpproxy-{proxy.port}-")]
    assert refused(proxy.port)


def ssh_handshake(proxy: TcpProxy, sshd) -> int:
    """Key exchange and public-key authentication through the proxy; raises where it is cut. Returns
    how many bytes the server had sent when the key exchange was over."""
    key = paramiko.Ed25519Key.from_private_key_file(str(sshd.private_key))
    before = proxy.bytes_from_server
    transport = paramiko.Transport(socket.create_connection(("127.0.0.1", proxy.port), timeout=5))
    try:
        transport.banner_timeout = transport.auth_timeout = 5
        transport.start_client(timeout=5)
        key_exchange = proxy.bytes_from_server - before
        transport.auth_publickey(sshd.username, key)
        assert transport.is_authenticated()
        return key_exchange
    finally:
        transport.close()


def test_cut_after_cuts_an_ssh_handshake_at_each_step(sshd):
    with TcpProxy((sshd.host, sshd.port)) as proxy:
        key_exchange = ssh_handshake(proxy, sshd)  # uncut: where the steps end
        with socket.create_connection((sshd.host, sshd.port), timeout=5) as raw:
            banner = len(raw.recv(256).split(b"\n", 1)[0]) + 1
        assert banner < key_exchange
        for cut in (banner, banner + 100, key_exchange + 1):  # after the banner, in key exchange, in auth
            proxy.cut_after(server_bytes=cut)
            with pytest.raises((paramiko.SSHException, EOFError, OSError)):
                ssh_handshake(proxy, sshd)
        proxy.heal()
        ssh_handshake(proxy, sshd)
        assert proxy.accepted == 5
