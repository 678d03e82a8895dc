"""Fixtures of the adapter tests: a real OpenSSH sshd for the SFTP transport (skipped where sshd is
not installed, required when CASEHUB_REQUIRE_SERVICES=1)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.sshd import Sshd, SshdMissing, running_sshd, sshd_binary


@pytest.fixture(scope="session")
def sshd(tmp_path_factory) -> Sshd:
    """A real sshd on a free port of 127.0.0.1 that lets in only its client key; stopped at the end."""
    try:
        sshd_binary()
    except SshdMissing as missing:
        if os.environ.get("CASEHUB_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{missing} and CASEHUB_REQUIRE_SERVICES=1")
        pytest.skip(str(missing))
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def partner_folder(sshd) -> Path:
    """A fresh folder on the sshd, for one test: the same path locally and over SFTP."""
    return Path(tempfile.mkdtemp(dir=sshd.root))
