"""The partner API as a contract: the OpenAPI document says what the hub takes and answers, and a
partner can build from it alone. schemathesis fuzzes a live hub against it on both runtimes, and a
client generated from it by openapi-python-client posts visits and an acknowledgement."""

from __future__ import annotations

import importlib
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner
from zeep import Client as SoapClient

import flows
from adapters.http_app import create_app
from adapters.openapi import CONTRACTS
from cli import app as cli
from core.config import HubConfig
from sandbox.case_system import CaseSystem
from sandbox.rest_provider import create_rest_provider_app
from sandbox.server import LiveServer
from schemas.api import REQUEST_BODIES, VISIT_EXAMPLE
from schemas.identity import generate_organisation_number
from tests.conftest import TENANT, TOKEN, TOKEN_ENV, one_tenant, wait_for
from tests.flows.orders import issue, row

BIN = Path(sys.executable).parent
PROVIDER_ORG = generate_organisation_number(random.Random(15)).digits
PROVIDER_TOKEN, VENDOR_TOKEN, OUR_TOKEN = "provider-calls-hub", "vendor-calls-hub", "hub-calls-provider"
BODIES = {
    ("post", "/api/v1/events"): "request.events",
    ("post", "/api/v1/visits"): "request.visits",
    ("post", "/api/v1/orders/{order_id}/acknowledgement"): "request.acknowledgement",
}
"""Each partner operation that takes a body, and the name `casehub schemas export` gives it."""
CALLERS = {
    TOKEN: ["/api/v1/events", "/api/v1/feed"],
    VENDOR_TOKEN: ["/api/v1/visits"],
    PROVIDER_TOKEN: ["/api/v1/orders/{order_id}/acknowledgement"],
}
"""Each partner's token and the operations it may call."""


@pytest.fixture
def provider():
    app = create_rest_provider_app(token=OUR_TOKEN)
    with LiveServer(app) as server:
        yield app, server.url


@pytest.fixture
def hub_config(provider) -> HubConfig:
    os.environ.update(
        {
            TOKEN_ENV: TOKEN,
            "CASEHUB_TEST_PROVIDER_TOKEN": PROVIDER_TOKEN,
            "CASEHUB_TEST_VENDOR_TOKEN": VENDOR_TOKEN,
            "CASEHUB_TEST_OUR_TOKEN": OUR_TOKEN,
        }
    )
    return one_tenant(
        {
            "id": "omsorg-ab",
            "kind": "provider",
            "organisation_number": PROVIDER_ORG,
            "token_env": "CASEHUB_TEST_PROVIDER_TOKEN",
            "channel": {"type": "rest", "url": provider[1], "token_env": "CASEHUB_TEST_OUR_TOKEN", "timeout": 5},
        },
        {"id": "appen", "kind": "visit_vendor", "token_env": "CASEHUB_TEST_VENDOR_TOKEN"},
    )


@pytest.fixture
def served(make_hub):
    hub = make_hub()
    with LiveServer(create_app(hub, flows.routes(hub))) as server:
        yield hub, server.url


def document(url: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/openapi.json", timeout=10)
    assert answer.status_code == 200
    return answer.json()


def inline(schema: Any, definitions: dict[str, Any], prefix: str) -> Any:
    """`schema` with every `$ref` under `prefix` replaced by its definition, no `$defs`, and the
    discriminators' mappings naming definitions without the prefix."""
    if isinstance(schema, str):
        return schema.removeprefix(prefix)
    if isinstance(schema, list):
        return [inline(item, definitions, prefix) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if set(schema) == {"$ref"} and schema["$ref"].startswith(prefix):
        return inline(definitions[schema["$ref"].removeprefix(prefix)], definitions, prefix)
    return {key: inline(value, definitions, prefix) for key, value in schema.items() if key != "$defs"}


def test_each_body_in_the_document_is_the_schema_that_schemas_export_writes(served, tmp_path):
    _, url = served
    spec = document(url)
    result = CliRunner().invoke(cli, ["schemas", "export", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert spec["openapi"].startswith("3.1")
    components = spec["components"]["schemas"]
    for (method, path), name in BODIES.items():
        operation = spec["paths"][path][method]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        exported = json.loads((tmp_path / f"{name}.schema.json").read_text())
        assert inline(body, components, "#/components/schemas/") == inline(
            exported, exported.get("$defs", {}), "#/$defs/"
        )
        assert operation["security"] == [{"bearer": []}]
        for status in ("202", "401", "403", "413", "422", "500", "503"):
            assert "application/json" in operation["responses"][status]["content"], (path, status)
        assert "Retry-After" in operation["responses"]["503"]["headers"]
        for example in operation["requestBody"]["content"]["application/json"]["examples"].values():
            REQUEST_BODIES[name].model_validate(example["value"])  # the examples are bodies the hub takes
    assert {"409"} <= set(spec["paths"]["/api/v1/events"]["post"]["responses"])
    assert "bearer" in spec["components"]["securitySchemes"]
    assert not [path for path in spec["paths"] if path.startswith(("/console", "/soap"))]


def test_the_soap_contracts_are_served_beside_the_document_and_zeep_can_use_them(served):
    _, url = served
    description = document(url)["info"]["description"]
    for name in CONTRACTS:
        assert f"(/contracts/{name})" in description
        answer = httpx.get(f"{url}/contracts/{name}", timeout=10)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/xml")
    client = SoapClient(f"{url}/contracts/hub.wsdl")  # its schema imported from /contracts/orders.xsd
    (service,) = client.wsdl.services.values()
    (port,) = service.ports.values()
    assert port.binding_options["address"] == f"{url}/soap/lov"
    assert "AcknowledgeOrder" in port.binding._operations
    provider = SoapClient(f"{url}/contracts/provider.wsdl")
    (service,) = provider.wsdl.services.values()
    (port,) = service.ports.values()
    assert {"SubmitOrder", "AmendOrder", "CancelOrder"} <= set(port.binding._operations)


def test_schemathesis_finds_no_server_error_and_no_answer_the_document_does_not_describe(served, tmp_path):
    _, url = served
    checks = ",".join(
        (
            "not_a_server_error",
            "status_code_conformance",
            "response_schema_conformance",
            "content_type_conformance",
            "response_headers_conformance",
        )
    )
    runs = [(f"Authorization: Bearer {token}", paths) for token, paths in CALLERS.items()]
    runs.append((None, None))  # the operations that need no token; the partners' ones without one
    for header, paths in runs:
        command = [str(BIN / "st"), "run", f"{url}/openapi.json", "--checks", checks, "--max-examples", "60"]
        command += ["--seed", "15", "--no-color", "--output-truncate", "true", "--request-timeout", "30"]
        command += ["-H", header] if header else []
        command += [arg for path in paths or () for arg in ("--include-path", path)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert result.returncode == 0, (
            f"{' '.join(command[:3])} {paths}:\n{result.stdout[-8000:]}{result.stderr[-2000:]}"
        )
        cases = re.search(r"(\d+) generated, (\d+) passed", result.stdout)  # every case ran and passed
        assert cases and cases[1] == cases[2] and int(cases[1]) > 0, result.stdout[-3000:]


def test_a_client_generated_from_the_document_pushes_visits_and_acknowledges_an_order(served, provider, tmp_path):
    hub, url = served
    (tmp_path / "openapi.json").write_text(json.dumps(document(url)))
    (tmp_path / "generator.yml").write_text(
        "project_name_override: partner_client\npackage_name_override: partner_client\npost_hooks: []\n"
    )
    generated = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            "openapi.json",
            "--config",
            "generator.yml",
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        client_module = importlib.import_module("partner_client")
        push = importlib.import_module("partner_client.api.visit_vendors.push_visits")
        acknowledge = importlib.import_module("partner_client.api.providers.acknowledge_order")
        models = importlib.import_module("partner_client.models")

        order = CaseSystem("http://unused", TOKEN, TENANT).order(PROVIDER_ORG)
        issue(hub, order)
        order_id = order["payload"]["order_id"]
        wait_for(lambda: (found := row(hub, order_id)) and found.state == "delivered", what="delivery")

        vendor = client_module.AuthenticatedClient(base_url=url, token=VENDOR_TOKEN)
        visit = VISIT_EXAMPLE | {
            "provider_org": PROVIDER_ORG,
            "customer_pnr": order["payload"]["person"]["personnummer"],
        }
        answer = push.sync_detailed(client=vendor, body=models.VisitPush.from_dict({"visits": [visit]}))
        assert answer.status_code == 202, answer.content
        assert answer.parsed.accepted == 1 and answer.parsed.rejected == []

        provider_client = client_module.AuthenticatedClient(base_url=url, token=PROVIDER_TOKEN)
        ack = models.OrderAcknowledgement.from_dict(
            {"order_id": order_id, "version": 1, "status": "accepted", "provider_org": PROVIDER_ORG}
        )
        answer = acknowledge.sync_detailed(order_id, client=provider_client, body=ack)
        assert answer.status_code == 202, answer.content
        assert answer.parsed.order_id == order_id
        assert row(hub, order_id).state == "accepted"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == "partner_client"]:
            del sys.modules[name]
