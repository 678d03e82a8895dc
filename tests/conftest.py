"""Fixtures shared by every test: the services (skipped on a laptop without them, required in CI),
hubs on both runtimes, and a scan of every log line of the run for personnummer."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

import flows
from core.config import HubConfig
from core.redaction import PERSONNUMMER
from core.runtime import Hub
from core.settings import Settings
from core.store import Store
from core.store.tables import metadata
from tests.sshd import Sshd, SshdMissing, running_sshd, sshd_binary

flows.load()  # every flow's steps, jobs and tables

REQUIRE_SERVICES = os.environ.get("CASEHUB_REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get("CASEHUB_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
AMQP_HOST = ("127.0.0.1", 5672)
TENANT = "0125"
TOKEN = "test-token-0125"
TOKEN_ENV = "CASEHUB_TEST_TOKEN_0125"


def need(service: str, address: tuple[str, int]) -> None:
    """Skip when a service is not reachable, or fail when CASEHUB_REQUIRE_SERVICES=1."""
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError as error:
        message = f"{service} is not reachable at {address[0]}:{address[1]} ({error})"
        if REQUIRE_SERVICES:
            pytest.fail(message + " and CASEHUB_REQUIRE_SERVICES=1")
        pytest.skip(message)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- services -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh PostgreSQL database for the session, migrated; dropped at the end."""
    need("PostgreSQL", ("127.0.0.1", 5432))
    name = f"casehub_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    store = Store(url)
    store.migrate()
    store.dispose()
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session")
def amqp_vhost():
    """A RabbitMQ virtual host of this session's own, so that no queue is shared with anything else."""
    need("RabbitMQ", AMQP_HOST)
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        yield "amqp://guest:guest@127.0.0.1:5672/%2F"
        return
    vhost = f"casehub-test-{uuid.uuid4().hex[:8]}"
    subprocess.run([ctl, "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        [ctl, "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True, capture_output=True
    )
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    subprocess.run([ctl, "-q", "delete_vhost", vhost], capture_output=True)


def empty_tables(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY")
    engine.dispose()


# --- a real OpenSSH sshd for SFTP ------------------------------------------------------------
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


# --- hubs -----------------------------------------------------------------------------------


def one_tenant(*partners: dict, **sections: dict) -> HubConfig:
    """A configuration of the tenant TENANT with its case system, `partners` and flows' `sections`."""
    case_system = {"id": "case-system", "kind": "case_system", "token_env": TOKEN_ENV}
    return HubConfig.model_validate(
        {"tenants": [{"code": TENANT, "name": "Ekerö kommun", "partners": [case_system, *partners], **sections}]}
    )


@pytest.fixture
def hub_config() -> HubConfig:
    os.environ[TOKEN_ENV] = TOKEN
    return HubConfig.model_validate(
        {
            "tenants": [
                {
                    "code": TENANT,
                    "name": "Ekerö kommun",
                    "partners": [{"id": "case-system", "kind": "case_system", "token_env": TOKEN_ENV}],
                },
                {"code": "0180", "name": "Stockholms stad", "partners": []},
            ]
        }
    )


@pytest.fixture(params=["embedded", "scale"])
def runtime(request, tmp_path) -> Settings:
    """Settings for the embedded default (in-process broker, SQLite) and for scale (RabbitMQ, PostgreSQL)."""
    fast_retries = {"retry_max": 3, "retry_min_backoff_ms": 50, "retry_max_backoff_ms": 200}
    if request.param == "embedded":
        return Settings(broker_url="memory://", database_url=f"sqlite:///{tmp_path / 'hub.db'}", **fast_retries)
    database = request.getfixturevalue("postgres_database")
    vhost = request.getfixturevalue("amqp_vhost")
    empty_tables(database)
    return Settings(broker_url=vhost, database_url=database, **fast_retries)


@pytest.fixture
def make_hub(runtime, hub_config):
    """Builds started hubs on the test's runtime; stops them at the end."""
    hubs = []

    def make(*, worker: bool = True, **overrides) -> Hub:
        settings = runtime.model_copy(update=overrides)
        hub = Hub(settings, hub_config)
        hub.store.migrate()
        hub.start(worker=worker)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        if not hub.bus.in_process:
            hub.bus.broker.flush_all()
        hub.stop()


# --- no personnummer in any log line of the run ----------------------------------------------


class _EveryRecord(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        if PERSONNUMMER.search(text):
            self.leaks.append(f"{record.name}: {text[:300]}")


_every_record = _EveryRecord()


def pytest_configure(config) -> None:
    root = logging.getLogger()
    root.addHandler(_every_record)
    root.setLevel(logging.DEBUG)
    for noisy in ("pika", "hpack", "httpcore", "asyncio", "paramiko.transport"):
        logging.getLogger(noisy).setLevel(logging.INFO)


def pytest_sessionfinish(session, exitstatus) -> None:
    if _every_record.leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(
            f"{len(_every_record.leaks)} log lines hold something shaped like a personnummer:", red=True
        )
        for line in _every_record.leaks[:20]:
            reporter.write_line("  " + line, red=True)
        session.exitstatus = 1


@pytest.fixture
def log_leaks():
    """The log lines, so far in the run, that hold something shaped like a personnummer."""
    return _every_record.leaks
