"""SFTP upload and download rates of a 100 MB file against a local OpenSSH sshd: the hub's
SftpConnection, OpenSSH's own `sftp` client, and paramiko's default `put`/`get`, on the same server
and file; and the ratio hub / OpenSSH for each direction (target: at least 0.8).

Every transfer runs `--rounds` times, the clients taking turns, and the median is reported (the
machine is shared, so single figures wander). Connection setup is not counted: the hub keeps its
connection, and OpenSSH's figure has the median time of a batch that only connects subtracted.

    .venv/bin/python benchmarks/sftp.py [--mb 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import paramiko

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.sftp import SftpConnection  # noqa: E402
from tests.sshd import Sshd, running_sshd  # noqa: E402

MB = 1_000_000


def seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def openssh(server: Sshd, name: str, batch: str) -> Callable[[], object]:
    """Runs OpenSSH's sftp client with `batch` as its batch file."""
    batch_file = server.workdir / f"{name}.batch"
    batch_file.write_text(batch)
    command = [
        "sftp",
        "-q",
        "-b",
        str(batch_file),
        "-i",
        str(server.private_key),
        "-P",
        str(server.port),
        "-o",
        f"UserKnownHostsFile={server.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        f"{server.username}@{server.host}",
    ]
    return lambda: subprocess.run(command, check=True, capture_output=True)


def paramiko_default(server: Sshd) -> paramiko.SFTPClient:
    """paramiko as most code uses it: SSHClient, default ciphers and request sizes."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(server.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        server.host,
        server.port,
        username=server.username,
        key_filename=str(server.private_key),
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    return client.open_sftp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=100, help="file size, MB")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    size = args.mb * MB

    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="casehub-bench-sftp-"))
        server = stack.enter_context(running_sshd(Path(tmp)))
        local = Path(tmp) / "local.bin"
        with local.open("wb") as out:
            for _ in range(args.mb):
                out.write(os.urandom(MB))
        back = Path(tmp) / "back.bin"
        remote = server.root / "remote.bin"
        remote_name = str(remote)

        endpoint = server.endpoint(timeout=10.0)
        hub = stack.enter_context(SftpConnection(endpoint))
        default = paramiko_default(server)
        stack.callback(default.get_channel().get_transport().close)

        def hub_upload() -> None:
            with local.open("rb") as source:
                hub.upload(str(server.root), "remote.bin", source)

        def hub_download() -> None:
            with back.open("wb") as target:
                hub.download(remote_name, target)

        transfers: dict[str, Callable[[], object]] = {
            "hub upload": hub_upload,
            "hub download": hub_download,
            "openssh upload": openssh(server, "put", f"put {local} {remote}\n"),
            "openssh download": openssh(server, "get", f"get {remote} {back}\n"),
            "paramiko default put": lambda: default.put(str(local), remote_name),
            "paramiko default get": lambda: default.get(remote_name, str(back)),
        }
        connect_only = openssh(server, "connect", "pwd\n")
        times: dict[str, list[float]] = {name: [] for name in transfers}
        setup: list[float] = []
        for _ in range(args.rounds):
            setup.append(seconds(connect_only))
            for name, transfer in transfers.items():
                times[name].append(seconds(transfer))
                if name.endswith(("download", "get")):
                    assert back.stat().st_size == size, f"{name} brought back {back.stat().st_size} bytes"
        connect = statistics.median(setup)
        for name in ("openssh upload", "openssh download"):
            times[name] = [t - connect for t in times[name]]

        cipher = hub._client.get_transport().remote_cipher
        default_cipher = default.get_channel().get_transport().remote_cipher

    rate = {name: size / statistics.median(values) / MB for name, values in times.items()}
    print(f"SFTP, {args.mb} MB file, local OpenSSH sshd, median of {args.rounds} rounds (MB/s = 10^6 bytes/s)")
    print(
        f"  hub ciphers {cipher}; paramiko default {default_cipher}; "
        f"OpenSSH connection setup {connect * 1000:.0f} ms (subtracted)"
    )
    for name, value in rate.items():
        spread = ", ".join(f"{size / t / MB:.0f}" for t in times[name])
        print(f"  {name:22} {value:6.0f} MB/s   (rounds: {spread})")
    for direction in ("upload", "download"):
        ratio = rate[f"hub {direction}"] / rate[f"openssh {direction}"]
        print(f"  hub / OpenSSH {direction:8}  {ratio:5.2f}  {'ok' if ratio >= 0.8 else 'BELOW the 0.8 target'}")


if __name__ == "__main__":
    main()
