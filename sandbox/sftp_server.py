"""A simulated partner's SFTP server, for the demo and the tests on a machine without OpenSSH.

Built on paramiko's server side: it serves one local folder as the SFTP root (a path is resolved
under it and may never leave it; `..` is refused), lets in one user with one client key that it
generates, and listens on 127.0.0.1 on a free port. Each connection is a paramiko `Transport` (a
thread of its own), each SFTP session on it another thread.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paramiko.sftp import SFTP_FAILURE, SFTP_OK, SFTP_PERMISSION_DENIED


def _new_key() -> tuple[str, paramiko.Ed25519Key]:
    """A fresh ed25519 key: its OpenSSH private key text, and the key as paramiko loads it."""
    text = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode("ascii")
    )
    return text, paramiko.Ed25519Key.from_private_key(io.StringIO(text))


class _Escape(Exception):
    """A client's path that would leave the root."""


class _Root:
    """Resolves the client's paths under one folder ("/" and "" are the folder itself)."""

    def __init__(self, folder: Path) -> None:
        self.folder = os.path.realpath(folder)

    def resolve(self, path: str) -> str:
        parts = [part for part in path.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise _Escape(path)
        local = os.path.join(self.folder, *parts)
        if os.path.commonpath([self.folder, os.path.realpath(local)]) != self.folder:
            raise _Escape(path)  # through a symbolic link
        return local


class _Handle(paramiko.SFTPHandle):
    """An open file: paramiko's SFTPHandle reads and writes `readfile`/`writefile` itself."""

    def __init__(self, file: io.BufferedIOBase, flags: int) -> None:
        super().__init__(flags)
        self.readfile = self.writefile = file

    def stat(self) -> paramiko.SFTPAttributes:
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))


def _sftp_call(method):
    """Answers a path outside the root with "permission denied" and an OSError with its SFTP code."""

    @functools.wraps(method)
    def call(self, *args):
        try:
            return method(self, *args)
        except _Escape:
            return SFTP_PERMISSION_DENIED
        except OSError as error:
            return paramiko.SFTPServer.convert_errno(error.errno)

    return call


class _Sftp(paramiko.SFTPServerInterface):
    """The SFTP operations the hub's client uses, on the root folder."""

    def __init__(self, server: _Auth, *args: object, **kwargs: object) -> None:
        super().__init__(server, *args, **kwargs)
        self.root = server.root

    @_sftp_call
    def open(self, path, flags, attr):
        mode = attr.st_mode & 0o7777 if attr.st_mode is not None else 0o666
        fd = os.open(self.root.resolve(path), flags, mode)
        if flags & os.O_WRONLY:
            fmode = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            fmode = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            fmode = "rb"
        return _Handle(os.fdopen(fd, fmode), flags)

    @_sftp_call
    def list_folder(self, path):
        folder = self.root.resolve(path)
        return [
            paramiko.SFTPAttributes.from_stat(os.lstat(os.path.join(folder, name)), name) for name in os.listdir(folder)
        ]

    @_sftp_call
    def stat(self, path):
        return paramiko.SFTPAttributes.from_stat(os.stat(self.root.resolve(path)))

    @_sftp_call
    def lstat(self, path):
        return paramiko.SFTPAttributes.from_stat(os.lstat(self.root.resolve(path)))

    @_sftp_call
    def remove(self, path):
        os.remove(self.root.resolve(path))
        return SFTP_OK

    @_sftp_call
    def rename(self, oldpath, newpath):
        """SFTP v3 rename: refused when the new name exists (posix_rename replaces)."""
        old, new = self.root.resolve(oldpath), self.root.resolve(newpath)
        if os.path.lexists(new):
            return SFTP_FAILURE
        os.rename(old, new)
        return SFTP_OK

    @_sftp_call
    def posix_rename(self, oldpath, newpath):
        os.replace(self.root.resolve(oldpath), self.root.resolve(newpath))
        return SFTP_OK

    @_sftp_call
    def mkdir(self, path, attr):
        os.mkdir(self.root.resolve(path), attr.st_mode & 0o7777 if attr.st_mode is not None else 0o777)
        return SFTP_OK


class _Auth(paramiko.ServerInterface):
    """Lets in `username` with the one authorised key, over public-key authentication only."""

    def __init__(self, root: _Root, username: str, key: paramiko.PKey) -> None:
        self.root = root
        self.username = username
        self.key = key

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if username == self.username and key.asbytes() == self.key.asbytes():
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class SandboxSftpServer:
    """A local SFTP server for the demo and tests; `with SandboxSftpServer(root) as server: ...`.

    `private_key_path` is a client key it accepts (in a temporary folder of its own, outside
    `root`); `host_key_line` is its host key as a client pins it, "ssh-ed25519 AAAA...".
    """

    def __init__(
        self, root: Path, *, host: str = "127.0.0.1", port: int | None = None, username: str = "provider"
    ) -> None:
        self.host = host
        self.username = username
        self._keys = Path(tempfile.mkdtemp(prefix="casehub-sftp-"))
        self.private_key_path = self._keys / "client_ed25519"
        client_text, client_key = _new_key()
        self.private_key_path.touch(mode=0o600)
        self.private_key_path.write_text(client_text, encoding="ascii")
        _, self._host_key = _new_key()
        self.host_key_line = f"{self._host_key.get_name()} {self._host_key.get_base64()}"
        self._auth = _Auth(_Root(root), username, client_key)
        self._listener = socket.create_server((host, port or 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._transports: list[paramiko.Transport] = []
        self._acceptor = threading.Thread(target=self._accept, name=f"sandbox-sftp-{self.port}", daemon=True)

    def __enter__(self) -> SandboxSftpServer:
        self._acceptor.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._acceptor.join()
        self._listener.close()
        for transport in self._transports:  # the acceptor has stopped: the list stands still
            transport.close()
        shutil.rmtree(self._keys, ignore_errors=True)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            transport = paramiko.Transport(sock)
            transport.add_server_key(self._host_key)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, _Sftp)
            self._transports = [t for t in self._transports if t.is_active()] + [transport]
            transport.start_server(threading.Event(), self._auth)  # returns at once: the Transport is a thread
