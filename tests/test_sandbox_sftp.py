"""The sandbox's SFTP server, driven by the hub's own SFTP client: what the demo's provider relies on."""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import replace

import pytest

from adapters.sftp import Delivery, SftpConnection, SftpEndpoint
from core.errors import Misconfigured, Rejected, Transient
from sandbox.sftp_server import SandboxSftpServer


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "root"
    (root / "orders").mkdir(parents=True)
    return root


@pytest.fixture
def server(root):
    with SandboxSftpServer(root) as server:
        yield server


@pytest.fixture
def endpoint(server) -> SftpEndpoint:
    return SftpEndpoint(
        host=server.host,
        port=server.port,
        username=server.username,
        private_key=str(server.private_key_path),
        host_key=server.host_key_line,
        timeout=5.0,
    )


@pytest.fixture
def connection(endpoint):
    with SftpConnection(endpoint, attempts=1) as connection:
        yield connection


def test_the_keys_are_outside_the_root_and_the_host_key_is_pinnable(server, root):
    assert not server.private_key_path.is_relative_to(root)
    assert server.private_key_path.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert server.host_key_line.startswith("ssh-ed25519 AAAA")
    assert server.host == "127.0.0.1" and server.port > 0 and server.username == "provider"


def test_an_upload_lands_in_the_root_without_a_part_file(connection, root):
    data = os.urandom(300_000)

    delivery = connection.upload("orders", "order_42_1.xml", data)
    again = connection.upload("/orders", "order_42_1.xml", b"a resend replaces")

    assert os.listdir(root / "orders") == ["order_42_1.xml"]
    assert (root / "orders" / "order_42_1.xml").read_bytes() == b"a resend replaces"
    assert delivery == Delivery(path="orders/order_42_1.xml", size=len(data), sha256=hashlib.sha256(data).hexdigest())
    assert again.path == "/orders/order_42_1.xml"


def test_a_5_mb_download_is_identical(connection, root):
    data = os.urandom(5 * 1024 * 1024 + 12345)  # not a whole number of 128 KiB reads
    (root / "orders" / "big.bin").write_bytes(data)
    target = io.BytesIO()

    assert connection.download("orders/big.bin", target) == len(data)
    assert target.getvalue() == data


def test_ready_files_are_those_with_a_done_file(connection, root):
    inbox = root / "orders"
    for name in ("a.xml", "a.xml.done", "b.xml", "c.xml.part", "c.xml.part.done"):
        (inbox / name).write_text(name)
    (inbox / "d.xml").mkdir()
    (inbox / "d.xml.done").write_text("")
    for n in range(40):  # more than paramiko's 16 names per listing packet
        (inbox / f"e{n:02}.xml").write_text("")

    assert connection.ready_files("orders", pattern="*.xml") == ["a.xml"]
    assert connection.ready_files("orders", pattern="[ab].xml", done_suffix=None) == ["a.xml", "b.xml"]
    assert len(connection.ready_files("orders", pattern="e*.xml", done_suffix=None)) == 40


def test_archive_moves_the_file_and_its_done_file(connection, root):
    inbox = root / "orders"
    (inbox / "a.xml").write_text("order")
    (inbox / "a.xml.done").write_text("")

    connection.archive("orders", "a.xml")
    connection.archive("orders", "a.xml")  # a repeated call leaves it where it is

    assert sorted(os.listdir(inbox)) == ["archive"]
    assert sorted(os.listdir(inbox / "archive")) == ["a.xml", "a.xml.done"]
    assert (inbox / "archive" / "a.xml").read_text() == "order"


def test_fail_moves_the_file_and_writes_the_reason(connection, root):
    inbox = root / "orders"
    (inbox / "b.xml").write_text("<order")
    (inbox / "b.xml.done").write_text("")

    connection.fail("orders", "b.xml", "not well-formed: line 1")

    assert sorted(os.listdir(inbox)) == ["failed"]
    assert sorted(os.listdir(inbox / "failed")) == ["b.xml", "b.xml.done", "b.xml.reason.txt"]
    assert (inbox / "failed" / "b.xml.reason.txt").read_text() == "not well-formed: line 1"


def test_a_missing_file_is_rejected(connection):
    with pytest.raises(Rejected):
        connection.download("orders/missing.xml", io.BytesIO())


@pytest.mark.parametrize(
    "operation",
    [
        lambda c: c.upload("orders/..", "escaped.xml", b"x"),
        lambda c: c.upload("../outside", "escaped.xml", b"x"),
        lambda c: c.download("/orders/../../secret.txt", io.BytesIO()),
        lambda c: c.ready_files("..", pattern="*"),
        lambda c: c.archive("orders", "../../secret.txt", done_suffix=None),
    ],
)
def test_a_path_with_dotdot_is_refused(connection, root, operation):
    (root.parent / "outside").mkdir()
    (root.parent / "secret.txt").write_text("secret")

    with pytest.raises(Rejected):
        operation(connection)

    assert os.listdir(root.parent / "outside") == []
    assert (root.parent / "secret.txt").read_text() == "secret"
    assert not (root / "escaped.xml").exists()


def test_a_symbolic_link_out_of_the_root_is_refused(connection, root):
    (root.parent / "secret.txt").write_text("secret")
    (root / "orders" / "link.txt").symlink_to(root.parent / "secret.txt")

    with pytest.raises(Rejected):
        connection.download("orders/link.txt", io.BytesIO())


def test_an_unknown_client_key_is_refused(endpoint, tmp_path):
    with SandboxSftpServer(tmp_path) as other:
        stranger = replace(endpoint, private_key=str(other.private_key_path))
        with pytest.raises(Misconfigured) as refused:
            SftpConnection(stranger, attempts=1).__enter__()
    assert refused.value.where == "private_key"


def test_a_wrong_pinned_host_key_is_refused(endpoint, tmp_path):
    with SandboxSftpServer(tmp_path) as other:
        impostor = replace(endpoint, host_key=other.host_key_line)
    with pytest.raises(Misconfigured) as refused:
        SftpConnection(impostor, attempts=1).__enter__()
    assert refused.value.where == "host_key"


def test_stopping_closes_every_connection(root):
    with SandboxSftpServer(root) as server:
        endpoint = SftpEndpoint(
            server.host, server.port, server.username, str(server.private_key_path), server.host_key_line, timeout=5.0
        )
        connection = SftpConnection(endpoint, attempts=1).__enter__()
    with pytest.raises(Transient):
        connection.ready_files("orders", pattern="*")
    connection.close()
    assert not server.private_key_path.exists()
