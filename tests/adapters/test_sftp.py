"""The SFTP transport against a real OpenSSH sshd: delivery, pickup, host-key pinning and failures."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import socket
import threading
from dataclasses import replace

import paramiko
import pytest

from adapters.sftp import Delivery, SftpConnection, SftpEndpoint
from core.errors import Misconfigured, Rejected, Transient
from tests.sshd import keygen

MB = 1024 * 1024


@pytest.fixture
def endpoint(sshd) -> SftpEndpoint:
    return sshd.endpoint()


@pytest.fixture
def connection(endpoint):
    with SftpConnection(endpoint) as connection:
        yield connection


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def _retries_logged(caplog):
    caplog.set_level(logging.INFO, logger="adapters.retry")  # each retry is an INFO line


def retries(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "adapters.retry" and "Retrying" in r.getMessage()]


class WatchingSource(io.RawIOBase):
    """A stream that records what the partner's folder holds while the upload is under way."""

    def __init__(self, data: bytes, folder) -> None:
        self.data = io.BytesIO(data)
        self.folder = folder
        self.seen: list[list[str]] = []

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.seen.append(sorted(os.listdir(self.folder)))
        return self.data.readinto(buffer)


# --- delivery ------------------------------------------------------------------------------------


def test_upload_writes_a_part_file_then_renames_it(connection, partner_folder):
    data = os.urandom(300_000)
    source = WatchingSource(data, partner_folder)

    delivery = connection.upload(str(partner_folder), "order_42_1.xml", source)

    assert ["order_42_1.xml.part"] in source.seen[1:]
    assert all("order_42_1.xml" not in names for names in source.seen)
    assert os.listdir(partner_folder) == ["order_42_1.xml"]
    assert (partner_folder / "order_42_1.xml").read_bytes() == data
    assert delivery == Delivery(path=f"{partner_folder}/order_42_1.xml", size=len(data), sha256=sha256(data))


def test_a_resend_replaces_the_file(connection, partner_folder):
    connection.upload(str(partner_folder), "fees_2025-01.paxml", b"first")
    delivery = connection.upload(str(partner_folder), "fees_2025-01.paxml", b"second, longer")

    assert os.listdir(partner_folder) == ["fees_2025-01.paxml"]
    assert (partner_folder / "fees_2025-01.paxml").read_bytes() == b"second, longer"
    assert delivery.size == len(b"second, longer")


def test_a_streamed_20_mb_file_comes_back_identical(connection, partner_folder, tmp_path):
    original = tmp_path / "big.sie"
    original.write_bytes(os.urandom(20 * MB))
    expected = sha256(original.read_bytes())

    with original.open("rb") as source:
        delivery = connection.upload(str(partner_folder), "big.sie", source)
    with (tmp_path / "back.sie").open("wb") as target:
        size = connection.download(f"{partner_folder}/big.sie", target)

    assert (delivery.size, delivery.sha256) == (20 * MB, expected)
    assert size == 20 * MB
    assert sha256((tmp_path / "back.sie").read_bytes()) == expected


def test_many_downloads_over_one_connection_all_complete_identical(connection, partner_folder):
    data = os.urandom(4 * MB)
    (partner_folder / "visits.csv").write_bytes(data)

    for _ in range(16):
        target = io.BytesIO()
        assert connection.download(f"{partner_folder}/visits.csv", target) == len(data)
        assert sha256(target.getvalue()) == sha256(data)


def test_an_empty_file_goes_both_ways(connection, partner_folder):
    delivery = connection.upload(str(partner_folder), "empty.xml", b"")
    target = io.BytesIO()

    assert connection.download(delivery.path, target) == 0
    assert delivery == Delivery(path=f"{partner_folder}/empty.xml", size=0, sha256=sha256(b""))


def test_the_fast_cipher_is_negotiated(connection):
    assert connection._client.get_transport().remote_cipher == "aes128-gcm@openssh.com"


# --- pickup --------------------------------------------------------------------------------------


def put(folder, *names: str) -> None:
    for name in names:
        (folder / name).write_bytes(b"x")


def test_ready_files_are_those_with_a_done_file(connection, partner_folder):
    put(
        partner_folder,
        "visits_v1_20250101_2.csv",
        "visits_v1_20250101_2.csv.done",
        "visits_v1_20250101_1.csv",
        "visits_v1_20250101_1.csv.done",
        "visits_v1_20250102_1.csv",  # still being written: no done-file yet
        "visits_v1_20250103_1.csv.part",
        "visits_v1_20250103_1.csv.part.done",
        "notes.txt",
        "notes.txt.done",
    )
    (partner_folder / "archive").mkdir()
    put(partner_folder / "archive", "visits_v1_20241231_1.csv", "visits_v1_20241231_1.csv.done")

    directory = str(partner_folder)
    assert connection.ready_files(directory, pattern="visits_*.csv") == [
        "visits_v1_20250101_1.csv",
        "visits_v1_20250101_2.csv",
    ]
    assert connection.ready_files(directory, pattern="*") == [
        "notes.txt",
        "visits_v1_20250101_1.csv",
        "visits_v1_20250101_2.csv",
    ]


def test_ready_files_without_done_files_lists_every_match(connection, partner_folder):
    put(partner_folder, "ack_7_2.xml", "ack_7_1.xml", "ack_8_1.xml.part", "order_7_2.xml")

    assert connection.ready_files(str(partner_folder), pattern="ack_*.xml", done_suffix=None) == [
        "ack_7_1.xml",
        "ack_7_2.xml",
    ]


def test_archive_moves_the_file_and_its_done_file(connection, partner_folder):
    (partner_folder / "visits.csv").write_bytes(b"new")
    put(partner_folder, "visits.csv.done")
    (partner_folder / "archive").mkdir()
    (partner_folder / "archive" / "visits.csv").write_bytes(b"old")

    connection.archive(str(partner_folder), "visits.csv")
    connection.archive(str(partner_folder), "visits.csv")  # a repeated step changes nothing

    assert sorted(os.listdir(partner_folder)) == ["archive"]
    assert sorted(os.listdir(partner_folder / "archive")) == ["visits.csv", "visits.csv.done"]
    assert (partner_folder / "archive" / "visits.csv").read_bytes() == b"new"


def test_archive_creates_the_folder_and_takes_an_ack_without_done_file(connection, partner_folder):
    put(partner_folder, "ack_7_2.xml")

    connection.archive(str(partner_folder), "ack_7_2.xml", done_suffix=None)

    assert os.listdir(partner_folder / "archive") == ["ack_7_2.xml"]


def test_fail_moves_the_file_with_its_reason(connection, partner_folder):
    put(partner_folder, "visits.csv", "visits.csv.done")

    connection.fail(str(partner_folder), "visits.csv", "rad 3: okänt besöks-id")

    assert sorted(os.listdir(partner_folder)) == ["failed"]
    assert sorted(os.listdir(partner_folder / "failed")) == ["visits.csv", "visits.csv.done", "visits.csv.reason.txt"]
    assert (partner_folder / "failed" / "visits.csv.reason.txt").read_text("utf-8") == "rad 3: okänt besöks-id"


def test_a_missing_file_is_rejected(connection, partner_folder):
    with pytest.raises(Rejected) as rejected:
        connection.download(f"{partner_folder}/nothing.csv", io.BytesIO())

    assert rejected.value.where == f"{partner_folder}/nothing.csv"


# --- trust and failures ----------------------------------------------------------------------------


def test_a_server_with_another_host_key_is_refused_and_nothing_is_written(endpoint, partner_folder, tmp_path, caplog):
    pinned = replace(endpoint, host_key=keygen(tmp_path / "someone_else"))

    caplog.set_level(logging.INFO, logger="adapters.sftp")
    with pytest.raises(Misconfigured) as misconfigured:
        with SftpConnection(pinned) as connection:
            connection.upload(str(partner_folder), "order_1_1.xml", b"<order/>")

    assert str(misconfigured.value) == f"host_key: host key of 127.0.0.1:{endpoint.port} is not the pinned one"
    assert os.listdir(partner_folder) == []
    assert retries(caplog) == []


def test_a_client_key_the_server_refuses_is_misconfigured_without_retrying(endpoint, tmp_path, caplog):
    keygen(tmp_path / "unknown_client")
    stranger = replace(endpoint, private_key=str(tmp_path / "unknown_client"))

    caplog.set_level(logging.INFO, logger="adapters.sftp")
    with pytest.raises(Misconfigured) as misconfigured:
        with SftpConnection(stranger):
            pass

    assert misconfigured.value.where == "private_key" and "refused the key" in str(misconfigured.value)
    assert retries(caplog) == []


class _CutDuringLogin(paramiko.ServerInterface):
    """A server whose line goes down in the middle of the login (after the key exchange, at the key)."""

    def __init__(self) -> None:
        self.transport: paramiko.Transport | None = None
        self.logins = 0

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        self.logins += 1
        self.transport.sock.shutdown(socket.SHUT_RDWR)
        return paramiko.AUTH_FAILED


@pytest.fixture
def cutting_server(tmp_path):
    """An SSH server on a free port that cuts every connection during the login; (port, host key line, state)."""
    keygen(tmp_path / "cut_host")
    key = paramiko.Ed25519Key.from_private_key_file(str(tmp_path / "cut_host"))
    state = _CutDuringLogin()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            transport = paramiko.Transport(sock)
            transport.add_server_key(key)
            state.transport = transport
            transport.start_server(threading.Event(), state)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], f"{key.get_name()} {key.get_base64()}", state
    stop.set()
    thread.join()
    listener.close()


def test_a_connection_cut_during_the_login_is_transient_and_retried(endpoint, cutting_server, caplog):
    """paramiko says AuthenticationException ("transport shut down or saw EOF") for this too: it is
    the line, not a refusal, so the order must not be refused for it."""
    port, host_key, state = cutting_server
    cut = replace(endpoint, port=port, host_key=host_key, timeout=2.0)

    caplog.set_level(logging.INFO, logger="adapters.sftp")
    with pytest.raises(Transient) as transient:
        with SftpConnection(cut, attempts=3, backoff=0.01, max_backoff=0.02):
            pass

    assert "during login" in str(transient.value) or "EOF" in str(transient.value)
    assert state.logins == 3 and len(retries(caplog)) == 2


def test_a_server_that_never_answers_times_out_as_transient(endpoint):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, and never sends its banner
        silent_endpoint = replace(endpoint, port=silent.getsockname()[1], timeout=0.5)
        with pytest.raises(Transient):
            with SftpConnection(silent_endpoint, attempts=2, backoff=0.01, max_backoff=0.02):
                pass


def test_nothing_listening_is_transient_after_the_retries(endpoint, caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = replace(endpoint, port=port)

    caplog.set_level(logging.INFO, logger="adapters.sftp")
    with pytest.raises(Transient) as transient:
        with SftpConnection(closed, attempts=3, backoff=0.01, max_backoff=0.02):
            pass

    assert f"127.0.0.1:{port}" in str(transient.value)

    assert len(retries(caplog)) == 2


def test_a_dropped_connection_is_opened_again(endpoint, partner_folder, caplog):
    caplog.set_level(logging.INFO, logger="adapters.sftp")
    with SftpConnection(endpoint, backoff=0.01) as connection:
        connection.upload(str(partner_folder), "one.xml", b"1")
        connection._client.get_transport().close()  # the partner hangs up between two files

        connection.upload(str(partner_folder), "two.xml", b"2")

    assert sorted(os.listdir(partner_folder)) == ["one.xml", "two.xml"]
    assert len(retries(caplog)) == 1
