"""Event shapes: API Gateway REST proxy events, EventBridge events and direct payloads."""

from __future__ import annotations

import base64
import json

import pytest

from tests.support import api_event, load_event
from twilio_messaging.adapters import MAX_BODY_BYTES, parse_event
from twilio_messaging.errors import ValidationError


def test_api_gateway_event() -> None:
    invocation = parse_event(load_event("send_message/api_gateway.json"))
    assert invocation.source == "api" and invocation.method == "POST"
    assert invocation.payload["to"] == "+15558675310"
    assert invocation.api_base_url == "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod"
    assert invocation.header("content-type") == invocation.header("CONTENT-TYPE") == "application/json"
    assert invocation.request_id == "7d8f1c2e-4b7a-4c1e-9a63-2f1e0b9d5a10"


def test_custom_domain_base_path_is_kept() -> None:
    event = api_event("send_message/api_gateway.json")
    event["requestContext"]["domainName"] = "sms.example.com"
    event["requestContext"]["path"] = "/v1/messages"
    assert parse_event(event).api_base_url == "https://sms.example.com/v1"


def test_base64_body_is_decoded() -> None:
    event = api_event(
        "send_message/api_gateway.json",
        raw_body=base64.b64encode(b'{"to": "+15558675310"}').decode(),
        isBase64Encoded=True,
    )
    assert parse_event(event).payload == {"to": "+15558675310"}


def test_eventbridge_event_payload_is_the_detail() -> None:
    event = load_event("send_message/eventbridge.json")
    invocation = parse_event(event)
    assert invocation.source == "eventbridge"
    assert invocation.payload == event["detail"] and invocation.event_id == event["id"]


def test_direct_payload_is_the_event() -> None:
    event = load_event("send_message/step_functions.json")
    invocation = parse_event(event)
    assert invocation.source == "direct" and invocation.payload == event


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"raw_body": "{not json"}, "(body)", "not valid JSON"),
        ({"raw_body": ""}, "(body)", "required"),
        ({"raw_body": "x" * (MAX_BODY_BYTES + 1)}, "(body)", "larger than"),
        ({"headers": {"Content-Type": "application/x-www-form-urlencoded"}}, "Content-Type", "application/json"),
        ({"raw_body": "!!!", "isBase64Encoded": True}, "(body)", "base64"),
    ],
)
def test_bad_bodies_are_validation_errors(changes: dict, field: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_event(api_event("send_message/api_gateway.json", **changes))
    assert caught.value.details[0]["field"] == field
    assert fragment in caught.value.details[0]["problem"]


def test_json_content_type_with_charset_is_accepted() -> None:
    event = api_event("send_message/api_gateway.json", headers={"Content-Type": "application/json; charset=utf-8"})
    assert parse_event(event).payload["body"]
    assert json.loads(event["body"])


def test_api_gateway_invocations_answer_before_api_gateway_gives_up() -> None:
    from tests.support import LambdaContext
    from twilio_messaging.deadline import API_GATEWAY_BUDGET_SECONDS, Deadline

    assert Deadline.from_context(LambdaContext(remaining_ms=900_000), API_GATEWAY_BUDGET_SECONDS).remaining() <= 28.0
    assert Deadline.from_context(LambdaContext(remaining_ms=900_000)).remaining() > 800


def test_an_sqs_record_holds_the_eventbridge_event_as_a_direct_eventbridge_invocation_would() -> None:
    """The send queue: the event id stays the idempotency key, the caller the event's source."""
    from twilio_messaging.adapters import is_sqs_event, parse_sqs_record

    batch = load_event("send_message/sqs_batch.json")
    assert is_sqs_event(batch)
    record = batch["Records"][0]
    record["messageAttributes"] = {"REQUEUE_ATTEMPT": {"stringValue": "2", "dataType": "Number"}}
    queued = parse_sqs_record(record)
    event = json.loads(record["body"])
    assert queued.invocation == parse_event(event)
    assert queued.event_id == event["id"] and queued.invocation.caller == "eventbridge:com.example.orders"
    assert queued.problem is None and queued.body == record["body"]
    assert queued.message_id == record["messageId"] and queued.attributes == {"REQUEUE_ATTEMPT": "2"}
    assert queued.sent_at == int(record["attributes"]["SentTimestamp"]) / 1000


@pytest.mark.parametrize(
    ("body", "problem"),
    [("not json", "is not JSON"), ('{"to": "+15558675310"}', "is not an EventBridge event"), ("null", "is not an")],
)
def test_an_sqs_record_that_holds_no_event_says_why(body: str, problem: str) -> None:
    from twilio_messaging.adapters import parse_sqs_record

    record = load_event("send_message/sqs_batch.json")["Records"][0]
    queued = parse_sqs_record({**record, "body": body})
    assert queued.problem is not None and queued.problem.startswith(problem)
    assert queued.event_id is None and queued.body == body


def test_only_sqs_batches_are_sqs_events() -> None:
    from twilio_messaging.adapters import is_sqs_event

    assert not is_sqs_event(load_event("send_message/eventbridge.json"))
    assert not is_sqs_event(load_event("send_message/step_functions.json"))
    assert not is_sqs_event({"Records": []})
    assert not is_sqs_event({"Records": [{"eventSource": "aws:sns"}]})
    assert not is_sqs_event({"to": "+15558675310", "Records": "x"})
