"""A simulated payroll system: an SFTP server the hub delivers PAXml files to (`inbound/`)."""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

from sandbox.sftp_server import SandboxSftpServer


class SimulatedPayroll:
    """`with SimulatedPayroll(tenant, organisation_number) as payroll:` serves it; `partners_toml()`
    configures the hub: the payroll partner and the tenant's payroll section."""

    def __init__(self, tenant: str, organisation_number: str) -> None:
        self.tenant = tenant
        self.organisation_number = organisation_number
        self.root = Path(tempfile.mkdtemp(prefix="casehub-sftp-payroll-"))
        (self.root / "inbound").mkdir()
        self._stack = ExitStack()

    def __enter__(self) -> SimulatedPayroll:
        self.sftp = self._stack.enter_context(SandboxSftpServer(self.root, username="lon"))
        os.environ[self.key_env] = str(self.sftp.private_key_path)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def key_env(self) -> str:
        return f"CASEHUB_SANDBOX_{self.tenant}_PAYROLL_KEY"

    def files(self) -> dict[str, bytes]:
        """The files delivered, by name."""
        return {path.name: path.read_bytes() for path in sorted((self.root / "inbound").glob("*.pax"))}

    def partners_toml(self) -> str:
        return f"""
[[tenants.partners]]
id = "lon"
kind = "payroll"
channel = {{ type = "sftp", host = "127.0.0.1", port = {self.sftp.port}, username = "lon", \
private_key_env = "{self.key_env}", host_key = "{self.sftp.host_key_line}", \
inbound_dir = "inbound", outbound_dir = "outbound", timeout = 5 }}

[tenants.payroll]
organisation_number = "{self.organisation_number}"
"""
