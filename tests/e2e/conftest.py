"""The end-to-end suite: every test under tests/e2e is marked `e2e` (skipped when CASEHUB_SKIP_E2E=1),
and the private RabbitMQ node and PostgreSQL cluster that its fault-injection tests may break."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.services import PrivatePostgres, PrivateRabbitMQ, ServiceMissing

HERE = Path(__file__).resolve().parent
REQUIRE_SERVICES = os.environ.get("CASEHUB_REQUIRE_SERVICES") == "1"
SKIP_E2E = os.environ.get("CASEHUB_SKIP_E2E") == "1"


def pytest_collection_modifyitems(config, items) -> None:
    # Called with every item of the session, not only this folder's.
    skip = pytest.mark.skip(reason="CASEHUB_SKIP_E2E=1: the end-to-end tests are skipped")
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)
        if SKIP_E2E and item.get_closest_marker("e2e") is not None:
            item.add_marker(skip)


def installed(service: str, make):
    """make(), or a skip when a service's programs are missing (a failure when CASEHUB_REQUIRE_SERVICES=1)."""
    try:
        return make()
    except ServiceMissing as missing:
        message = f"a private {service} cannot be started: {missing}"
        if REQUIRE_SERVICES:
            pytest.fail(message + " and CASEHUB_REQUIRE_SERVICES=1")
        pytest.skip(message)


@pytest.fixture(scope="module")
def private_rabbitmq(tmp_path_factory):
    """A started RabbitMQ node of this module's own, on free ports; closed at the end of the module."""
    node = installed("RabbitMQ", lambda: PrivateRabbitMQ(tmp_path_factory.mktemp("rabbitmq")))
    try:
        node.start()
        yield node
    finally:
        node.close()


@pytest.fixture(scope="module")
def private_postgres(tmp_path_factory):
    """A started PostgreSQL cluster of this module's own, on a free port; closed at the end of the module."""
    cluster = installed("PostgreSQL", lambda: PrivatePostgres(tmp_path_factory.mktemp("postgres")))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
