"""The local API Gateway in process (no sockets, no Prism, no moto): the routes are the
template's, the events are REST API (payload 1.0) proxy events as API Gateway makes them, and
the functions' answers and failures come back as API Gateway would answer them."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from samcli.yamlhelper import yaml_parse

from local.api_server import InProcessFunctions, LambdaContext, LocalApiGateway
from local.prism import MESSAGES_PATH, patched_spec
from local.sign_webhook import signature
from local.stack import StackInfo, describe
from local.template import TEMPLATE, LocalTemplate, load_template
from tests.support import twilio_signature

SID = "SM" + "0" * 32


@pytest.fixture(scope="module")
def template() -> LocalTemplate:
    return load_template(parameters={"TwilioSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"})


class Gateway:
    """The local API Gateway with every function replaced by a recorder of its events."""

    def __init__(self, template: LocalTemplate) -> None:
        self.events: list[tuple[str, dict[str, Any], Any]] = []
        self.answer: Any = {"statusCode": 200, "body": "{}"}
        self.output = io.StringIO()
        self.functions = InProcessFunctions(template.functions, self.output)
        for name in template.functions:
            self.functions._handlers[name] = self._recorder(name)
        self.service = LocalApiGateway(api=template.api, lambda_runner=self.functions, port=3000, host="127.0.0.1")
        self.service.create()
        self.client = self.service._app.test_client()

    def _recorder(self, name: str) -> Any:
        def handler(event: dict[str, Any], context: Any) -> Any:
            self.events.append((name, event, context))
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

        return handler


@pytest.fixture
def gateway(template: LocalTemplate) -> Gateway:
    return Gateway(template)


def test_the_routes_are_the_api_events_of_the_templates_functions(template: LocalTemplate) -> None:
    declared = yaml_parse(TEMPLATE.read_text())
    expected = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"], name)
        for name, resource in declared["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in (resource["Properties"].get("Events") or {}).values()
        if event["Type"] == "Api"
    }
    assert {(r.method, r.path, r.function) for r in template.routes} == expected
    assert template.stage == "prod"


def test_functions_environment_and_layer_come_from_the_template(template: LocalTemplate) -> None:
    send = template.functions["SendMessageFunction"]
    assert send.module_file == TEMPLATE.parent / "functions/send_message/app.py" and send.attribute == "lambda_handler"
    assert send.layer_dirs == (TEMPLATE.parent / "layers/twilio_messaging",)
    assert send.environment["POWERTOOLS_SERVICE_NAME"] == "twilio-messaging"  # Globals
    assert send.environment["TWILIO_SECRET_ID"].endswith(":secret:x")  # the parameter, resolved
    assert send.timeout_seconds == 30
    table = next(t for t in template.tables if t.name == "StateTable")
    assert table.key_schema == [{"AttributeName": "id", "KeyType": "HASH"}] and table.ttl_attribute == "expiration"


def test_rest_api_proxy_event(gateway: Gateway) -> None:
    answer = gateway.client.get(f"/messages/{SID}?a=1&a=2&b=x%20y", headers={"X-Custom": "v", "User-Agent": "curl/8"})
    assert answer.status_code == 200
    [(function, event, context)] = gateway.events
    assert function == "GetMessageFunction"
    assert event["resource"] == "/messages/{sid}" and event["path"] == f"/messages/{SID}"
    assert event["httpMethod"] == "GET" and event["pathParameters"] == {"sid": SID}
    assert event["queryStringParameters"] == {"a": "2", "b": "x y"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x y"]}
    assert event["headers"]["X-Custom"] == "v" and event["multiValueHeaders"]["X-Custom"] == ["v"]
    assert event["body"] is None and event["isBase64Encoded"] is False and event["stageVariables"] is None
    request = event["requestContext"]
    assert request["stage"] == "prod" and request["path"] == f"/prod/messages/{SID}"
    assert request["resourcePath"] == "/messages/{sid}" and request["httpMethod"] == "GET"
    assert request["domainName"] == "localhost" and request["identity"]["userAgent"] == "curl/8"
    assert abs(request["requestTimeEpoch"] / 1000 - time.time()) < 5
    assert context.function_name == "GetMessageFunction" and 0 < context.get_remaining_time_in_millis() <= 30_000


def test_each_request_has_its_own_request_id(gateway: Gateway) -> None:
    gateway.client.get("/messages")
    gateway.client.get("/messages")
    ids = {event["requestContext"]["requestId"] for _, event, _ in gateway.events}
    contexts = {context.aws_request_id for _, _, context in gateway.events}
    assert len(ids) == 2 and len(contexts) == 2


def test_post_body_and_no_query(gateway: Gateway) -> None:
    gateway.client.post("/messages", data='{"to": "+15558675310"}', headers={"Content-Type": "application/json"})
    [(function, event, _)] = gateway.events
    assert function == "SendMessageFunction"
    assert event["body"] == '{"to": "+15558675310"}'
    assert event["queryStringParameters"] is None and event["pathParameters"] is None


def test_the_functions_answer_becomes_the_http_answer(gateway: Gateway) -> None:
    gateway.answer = {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "X-One": "1"},
        "multiValueHeaders": {"X-Many": ["a", "b"]},
        "body": '{"sid": "SM1"}',
    }
    answer = gateway.client.post("/messages", json={})
    assert answer.status_code == 201 and answer.json == {"sid": "SM1"}
    assert answer.headers["X-One"] == "1" and answer.headers.getlist("X-Many") == ["a", "b"]


def test_an_empty_204(gateway: Gateway) -> None:
    gateway.answer = {"statusCode": 204, "headers": {}, "body": ""}
    answer = gateway.client.delete(f"/messages/{SID}")
    assert answer.status_code == 204 and answer.data == b""


def test_a_failing_function_is_api_gateways_502(gateway: Gateway) -> None:
    gateway.answer = RuntimeError("boom")
    answer = gateway.client.get("/messages")
    assert answer.status_code == 502 and answer.json == {"message": "Internal server error"}
    assert "RuntimeError: boom" in gateway.output.getvalue()


def test_an_unknown_route_or_method_is_api_gateways_403(gateway: Gateway) -> None:
    for answer in (gateway.client.get("/nothing"), gateway.client.put("/messages")):
        assert answer.status_code == 403 and answer.json == {"message": "Missing Authentication Token"}
    assert gateway.events == []


def test_lambda_context(template: LocalTemplate) -> None:
    context = LambdaContext(template.functions["RawRequestFunction"], "req-1")
    assert context.invoked_function_arn.endswith(":function:RawRequestFunction")
    assert context.aws_request_id == "req-1" and context.memory_limit_in_mb == 256
    assert 29_000 < context.get_remaining_time_in_millis() <= 30_000


def test_sign_webhook_signs_as_twilio_does() -> None:
    form = "To=%2B15558675310&MediaUrl=b&MediaUrl=a&Reason=x&ReasonConferenceEnded=y&Empty="
    params = [("To", "+15558675310"), ("MediaUrl", "b"), ("MediaUrl", "a"), ("Reason", "x")]
    params += [("ReasonConferenceEnded", "y"), ("Empty", "")]
    url = "http://127.0.0.1:3000/webhooks/twilio"
    assert signature(form, url, "token") == twilio_signature(url, params, "token")


def test_patched_spec_declares_media_url_as_repeated_keys(tmp_path: Path) -> None:
    source = tmp_path / "source.json"
    form = {"application/x-www-form-urlencoded": {}}
    source.write_text(json.dumps({"paths": {MESSAGES_PATH: {"post": {"requestBody": {"content": form}}}}}))
    spec = patched_spec(tmp_path / "out", source).read_text()
    assert '"encoding": {"MediaUrl": {"style": "form", "explode": true}}' in spec


def test_make_local_prints_a_curl_command_for_every_route(template: LocalTemplate) -> None:
    url = "http://127.0.0.1:3001"
    machines = {"SendAndWaitForDeliveryStateMachine": "arn:aws:states:us-east-1:123456789012:stateMachine:x"}
    info = StackInfo(
        url, "http://simulator", "http://moto", "prod", url + "/webhooks/twilio", "queue", "stderr", {}, machines, True
    )
    text = describe(info, template)
    commands = [line for line in text.splitlines() if line.strip().startswith("curl")]
    for route in template.routes:
        path = url + route.path.replace("{sid}", "SM" + "a" * 32)
        method = "" if route.method == "GET" else f"-X {route.method} "
        assert any(method in c and path in c for c in commands), f"no curl for {route.method} {route.path}"
    if template.route("POST", "/webhooks/twilio"):
        assert f"local.sign_webhook --url {url}/webhooks/twilio" in text
    assert "local.twilio_simulator inbound --simulator http://simulator" in text
    assert "stepfunctions start-execution" in text and machines["SendAndWaitForDeliveryStateMachine"] in text
