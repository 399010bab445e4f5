"""docs/openapi.yaml describes the API that template.yaml deploys and the functions implement:
the same routes and methods, the same authorization, the request fields the parsers accept, the
Message the functions return, and every error code they can answer; and it is valid OpenAPI."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate
from samtranslator.yaml_helper import yaml_parse

from twilio_messaging import errors
from twilio_messaging.campaign_request import CAMPAIGN_FIELDS, NOT_IN_MESSAGE
from twilio_messaging.listing import PAGING_FIELDS, RESOURCE_BY_ROUTE
from twilio_messaging.message_model import normalize_message
from twilio_messaging.raw_request import RAW_FIELDS, RETRY_FIELDS
from twilio_messaging.send_request import SEND_FIELDS

ROOT = Path(__file__).resolve().parents[2]
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    return loaded


def template_api_events() -> dict[tuple[str, str], dict[str, Any]]:
    """(path, method) -> the Api event's Properties, for every Api event of every function."""
    template = yaml_parse((ROOT / "template.yaml").read_text())
    events = {}
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] == "Api":
                properties = event["Properties"]
                events[(properties["Path"], properties["Method"].lower())] = properties
    return events


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def ref(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """`node`, or what its $ref names (within this document)."""
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.")


def test_its_operations_are_the_templates_api_events(document: dict[str, Any]) -> None:
    assert set(operations(document)) == set(template_api_events())


def test_only_the_webhook_is_open_as_in_the_template(document: dict[str, Any]) -> None:
    """The template exempts the webhook from IAM (Authorizer NONE) and API keys; the document
    says the same with `security: []`, and every other operation needs SigV4 or an API key."""
    events = template_api_events()
    assert {s for r in document["security"] for s in r} == {"sigv4", "apiKey"}
    for key, operation in operations(document).items():
        auth = events[key].get("Auth")
        open_in_template = auth is not None and "NONE" in str(auth["Authorizer"])
        assert (operation.get("security") == []) == open_in_template, key
        if not open_in_template:
            assert "403" in operation["responses"], f"{key}: API Gateway's 403 is not described"


def test_every_operation_describes_bad_input_and_no_undocumented_success(document: dict[str, Any]) -> None:
    for key, operation in operations(document).items():
        responses = operation["responses"]
        assert "400" in responses, key
        assert "500" in responses, key
        assert any(status.startswith("2") for status in responses), key
        for status, response in responses.items():
            response = ref(document, response)
            if status == "204":
                assert "content" not in response
            elif status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (key, status)


def test_request_fields_are_the_fields_the_parsers_accept(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    # taskToken is accepted from Step Functions (direct invocation) only: over HTTP it is a 400.
    assert set(schemas["SendRequest"]["properties"]) == SEND_FIELDS - {"taskToken"}
    assert set(schemas["RawRequest"]["properties"]) == RAW_FIELDS
    assert set(schemas["CampaignRequest"]["properties"]) == CAMPAIGN_FIELDS
    assert set(schemas["CampaignMessage"]["properties"]) == SEND_FIELDS - set(NOT_IN_MESSAGE)
    assert set(schemas["RawRequest"]["properties"]["retry"]["properties"]) == RETRY_FIELDS
    for route, resource in RESOURCE_BY_ROUTE.items():
        parameters = [ref(document, p) for p in document["paths"][route]["get"]["parameters"]]
        assert {p["name"] for p in parameters if p["in"] == "query"} == PAGING_FIELDS | set(resource.filters), route


def test_the_message_is_the_normalized_message(document: dict[str, Any]) -> None:
    message = document["components"]["schemas"]["Message"]
    assert set(message["required"]) == set(message["properties"]) == set(normalize_message({}))


def test_every_error_code_is_described(document: dict[str, Any]) -> None:
    codes = {
        cls.code
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.TwilioMessagingError)
    }
    description = document["components"]["schemas"]["Error"]["properties"]["code"]["description"]
    assert codes <= set(re.findall(r"[A-Z][A-Z_]+[A-Z]", description)), codes
    statuses = {
        str(cls.http_status)
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.TwilioMessagingError)
    }
    described = {status for operation in operations(document).values() for status in operation["responses"]}
    assert statuses <= described
