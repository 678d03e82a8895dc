"""A real OpenSSH sshd on a free port of 127.0.0.1, for the SFTP tests and the SFTP benchmark.

`running_sshd(workdir)` generates a host key and a client key with ssh-keygen, writes an sshd_config
that allows only that client key, starts `sshd -D -e` as the current user and stops it at the end.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from adapters.sftp import SftpEndpoint

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


class SshdMissing(RuntimeError):
    """OpenSSH's sshd or ssh-keygen is not installed."""


@dataclass(frozen=True)
class Sshd:
    """What a client needs to reach the running sshd, and where the partners' folders go."""

    host: str
    port: int
    username: str
    private_key: Path
    host_key: str  # the server's public key, "ssh-ed25519 AAAA...": the one a client pins
    known_hosts: Path  # the same key in a known_hosts file, for OpenSSH's own clients
    root: Path  # a folder inside the user's reach, for the tests' partner folders
    workdir: Path

    def channel(self, key_env: str, folder: Path) -> dict:
        """A partner's `sftp` channel in the configuration: this server, `folder`/in and `folder`/out."""
        return {
            "type": "sftp",
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "private_key_env": key_env,
            "host_key": self.host_key,
            "inbound_dir": f"{folder}/in",
            "outbound_dir": f"{folder}/out",
            "timeout": 5,
        }

    def endpoint(self, timeout: float = 5.0) -> SftpEndpoint:
        """The hub's view of this server: its address, the client key and the pinned host key."""
        return SftpEndpoint(
            host=self.host,
            port=self.port,
            username=self.username,
            private_key=str(self.private_key),
            host_key=self.host_key,
            timeout=timeout,
        )


def sshd_binary() -> str:
    """The sshd and ssh-keygen programs, or SshdMissing saying which one is not installed."""
    sshd = shutil.which("sshd") or next((p for p in SSHD_CANDIDATES if os.access(p, os.X_OK)), None)
    if sshd is None:
        raise SshdMissing("OpenSSH's sshd is not installed (apt-get install openssh-server)")
    if shutil.which("ssh-keygen") is None:
        raise SshdMissing("ssh-keygen is not installed (apt-get install openssh-client)")
    return sshd


def keygen(path: Path) -> str:
    """Generates an ed25519 key pair at `path` (and `path`.pub); returns the public key, "type base64"."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "casehub-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    kind, data, *_ = path.with_name(path.name + ".pub").read_text().split()
    return f"{kind} {data}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(workdir: Path, port: int, host_key: Path, authorized_keys: Path) -> str:
    return "\n".join(
        [
            f"ListenAddress 127.0.0.1:{port}",
            f"HostKey {host_key}",
            f"AuthorizedKeysFile {authorized_keys}",
            f"PidFile {workdir / 'sshd.pid'}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "UsePAM no",
            "Subsystem sftp internal-sftp",
            "LogLevel ERROR",
            "",
        ]
    )


def _wait_for_port(process: subprocess.Popen, port: int, timeout: float) -> bool:
    """True once the port answers; False if sshd exited (e.g. the port was taken meanwhile)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"sshd did not answer on 127.0.0.1:{port} within {timeout} s") from None
            time.sleep(0.02)
    return False


def _stop(process: subprocess.Popen) -> None:
    """Stops sshd and the session processes it forked (they share its process group)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def running_sshd(workdir: Path, *, timeout: float = 10.0) -> Iterator[Sshd]:
    """Starts sshd with keys and config in `workdir`; yields how to reach it; stops it at the end."""
    sshd = sshd_binary()
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    workdir.mkdir(parents=True, exist_ok=True)
    host_key_line = keygen(workdir / "host_ed25519")
    client_key = workdir / "client_ed25519"
    authorized_keys = workdir / "authorized_keys"
    authorized_keys.write_text(keygen(client_key) + "\n")
    root = workdir / "root"
    root.mkdir(exist_ok=True)
    log = (workdir / "sshd.log").open("ab")
    for _ in range(5):  # the free port may be taken between choosing it and sshd binding it
        port = _free_port()
        config = workdir / "sshd_config"
        config.write_text(_config(workdir, port, workdir / "host_ed25519", authorized_keys))
        process = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=log, start_new_session=True
        )
        if _wait_for_port(process, port, timeout):
            break
    else:
        log.close()
        raise RuntimeError(f"sshd did not start: {(workdir / 'sshd.log').read_text()[-2000:]}")
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key_line}\n")
    try:
        yield Sshd(
            host="127.0.0.1",
            port=port,
            username=pwd.getpwuid(os.getuid()).pw_name,
            private_key=client_key,
            host_key=host_key_line,
            known_hosts=known_hosts,
            root=root,
            workdir=workdir,
        )
    finally:
        _stop(process)
        log.close()
