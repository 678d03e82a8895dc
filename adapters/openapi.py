"""The partner API's OpenAPI 3.1 document, and the contracts the hub serves beside it.

FastAPI gives the paths and their parameters. The request bodies and answers come from
`schemas.api`: a handler reads and stores its bytes first, so FastAPI never validates a body
itself, and `partner_operation` tells the document what the handler takes and answers instead.
The SOAP side is described by its WSDLs and schema, served under `/contracts/` and linked from the
document's description.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from adapters.soap.server import CONTENT_TYPE, HUB_WSDL, PROVIDER_WSDL, SCHEMAS, wsdl_for
from schemas.api import ANSWERS, REQUEST_BODIES, Problem, ServerProblem

REF = "#/components/schemas/{model}"
RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "seconds to wait before sending again", "schema": {"type": "integer"}}
}

DESCRIPTION = """\
The integration hub of a municipality's social services. Providers, mobile-reporting vendors and
the case system call it with the bearer token IT operations gave them; each kind of partner may
call only its own operations.

Every answer that says a request was received is given after the hub has stored it: a request
that was not answered can be sent again with the same ids, and is then counted as a duplicate.
A refused request is answered 4xx with `error` and `where` (the field, item or line); 503 with
`Retry-After` asks the partner to send again later.

The SOAP side: providers acknowledge orders with `AcknowledgeOrder` at `/soap/lov`, described by
[hub.wsdl](/contracts/hub.wsdl) (also at `/soap/lov?wsdl`); a provider with a SOAP channel serves
[provider.wsdl](/contracts/provider.wsdl). Both import [orders.xsd](/contracts/orders.xsd).
"""

CONTRACTS = {
    "hub.wsdl": "the hub's SOAP service for providers (AcknowledgeOrder)",
    "provider.wsdl": "the SOAP service a provider serves the hub (SubmitOrder, AmendOrder, CancelOrder)",
    "orders.xsd": "the orders' and acknowledgements' XML, which both WSDLs import",
}
"""The files under /contracts/, and what each describes."""


def partner_operation(
    *,
    answers: dict[int, type[BaseModel] | tuple[type[BaseModel], str]],
    body: type[BaseModel] | None = None,
    examples: dict[str, Any] | None = None,
    headers: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The route decorator's keyword arguments that describe a partner's operation: the body it
    reads (with `examples` by name), the `answers` by status (a model, described by its docstring,
    or a model and a description), and the refusals every partner operation may give (401, 403,
    413 for a body, 422, 500, 503)."""
    refused = {401: "no token, or one the hub does not know", 403: "the token's partner may not do this"}
    if body is not None:
        refused[413] = "the body is larger than the hub takes"
    refused[422] = "the request is wrong; `where` says what"
    responses = {status: answer(*_described(given), (headers or {}).get(status)) for status, given in answers.items()}
    responses |= {status: answer(Problem, why) for status, why in refused.items() if status not in answers}
    responses[500] = answer(ServerProblem, "an error the hub did not expect; not the partner's")
    responses[503] = answer(Problem, "the hub's store is not reachable now", RETRY_AFTER_HEADER)
    extra: dict[str, Any] = {"security": [{"bearer": []}]}
    if body is not None:
        content: dict[str, Any] = {"schema": {"$ref": REF.format(model=body.__name__)}}
        if examples:
            content["examples"] = {name: {"value": value} for name, value in examples.items()}
        extra["requestBody"] = {"required": True, "content": {"application/json": content}}
    return {"responses": responses, "openapi_extra": extra, "response_model": None}


def _described(given: type[BaseModel] | tuple[type[BaseModel], str]) -> tuple[type[BaseModel], str]:
    return given if isinstance(given, tuple) else (given, given.__doc__ or given.__name__)


def answer(model: type[BaseModel], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """An answer of JSON `model` (one of schemas.api.ANSWERS) for a route's `responses`."""
    described: dict[str, Any] = {
        "description": " ".join(description.split()),
        "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
    }
    if headers:
        described["headers"] = headers
    return described


def install(app: FastAPI) -> None:
    """Serve the contracts under /contracts/ and make `app.openapi()` the partner API's document."""
    app.include_router(_contracts())
    app.openapi = lambda: _document(app)  # type: ignore[method-assign]


def _document(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        document = get_openapi(
            title="casehub partner API",
            version=app.version,
            openapi_version="3.1.0",
            description=DESCRIPTION,
            routes=app.routes,
        )
        components = document.setdefault("components", {})
        components.setdefault("schemas", {}).update(component_schemas())
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "the partner's token, from IT operations"}
        }
        app.openapi_schema = document
    return app.openapi_schema


def component_schemas() -> dict[str, Any]:
    """The JSON Schemas of the bodies (as validated) and the answers (as written), under their
    models' names, referring to each other within the document's components."""
    models = [(model, "validation") for model in REQUEST_BODIES.values()]
    models += [(model, "serialization") for model in ANSWERS]
    refs, schemas = models_json_schema(models, ref_template=REF)  # type: ignore[arg-type]
    for (model, _mode), ref in refs.items():
        if ref["$ref"] != REF.format(model=model.__name__):  # two models by one name: the refs would lie
            raise RuntimeError(f"{model.__name__} is described as {ref['$ref']}")
    return schemas["$defs"]


def _contracts() -> APIRouter:
    router = APIRouter(prefix="/contracts", tags=["contracts"])
    for name, what in CONTRACTS.items():
        router.add_api_route(
            f"/{name}",
            _contract(name),
            methods=["GET"],
            summary=f"{name}: {what}",
            response_class=Response,
            responses={
                200: {"description": what, "content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}}
            },
        )
    return router


def _contract(name: str):
    def serve(request: Request) -> Response:
        if name == "hub.wsdl":  # its address and imports where this hub serves them
            base = str(request.base_url).rstrip("/")
            return Response(
                wsdl_for(HUB_WSDL, f"{base}/soap/lov", schemas=f"{base}/contracts/"), media_type=CONTENT_TYPE
            )
        if name == "provider.wsdl":
            return Response(PROVIDER_WSDL.read_bytes(), media_type=CONTENT_TYPE)
        return Response(SCHEMAS[name], media_type=CONTENT_TYPE)

    serve.__name__ = "contract_" + name.replace(".", "_")
    return serve
