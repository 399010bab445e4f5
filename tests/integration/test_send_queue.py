"""EventBridge `Send Message` events through the send queue (docs/api.md, "EventBridge: the `Send
Message` rule"): SQS batches fed to send_message's handler as Lambda's event source mapping hands
them over, against moto's state table and queues and a loopback Twilio.

moto's event source mappings cannot show what matters here: they honour neither ScalingConfig's
MaximumConcurrency nor ReportBatchItemFailures' partial answers. So each test builds the SQS event
the mapping would deliver and calls the handler itself, then looks at what a user would notice:
what Twilio was asked, the batchItemFailures answered, and what is left on the queues (the
template side, MaximumConcurrency 2 and the budget, is tests/unit/test_template.py's).
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug import Request, Response

from tests.support import ACCOUNT_SID, LambdaContext, load_event, load_handler, twilio_message

MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
AWS_ACCOUNT = "123456789012"  # moto's
REJECTED = {"code": 21211, "message": "The 'To' number +15558675311 is not a valid phone number.", "status": 400}
THROTTLED = {"code": 20429, "message": "Too Many Requests", "status": 429}
ONE = {"to": "+15558675310", "body": "Your order #1234 has shipped."}
TWO = {"to": ["+15558675310", "+15558675311"], "body": "Maintenance tonight at 22:00 UTC."}


def handler(event: dict[str, Any], remaining_ms: int = 30_000) -> Any:
    return load_handler("send_message").lambda_handler(copy.deepcopy(event), LambdaContext(remaining_ms=remaining_ms))


def send_event(detail: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """A `Send Message` event as the rule delivers it to the queue: the whole event."""
    event = copy.deepcopy(load_event("send_message/eventbridge.json"))
    event["id"] = event_id or str(uuid.uuid4())
    event["detail"] = detail
    return event


def record(body: str, attributes: dict[str, str] | None = None, receive_count: int = 1) -> dict[str, Any]:
    """One SQS record as the event source mapping hands it to the function."""
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": str(int(time.time() * 1000))},
        "messageAttributes": {
            name: {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}
            for name, value in (attributes or {}).items()
        },
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:{AWS_ACCOUNT}:send-queue",
        "awsRegion": "us-east-1",
    }


def batch(*events: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [record(json.dumps(event)) for event in events]}


def failures(answer: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in answer["batchItemFailures"]]


def posts(twilio: Any) -> list[dict[str, str]]:
    return [dict(request.form) for request, _ in twilio.log if request.method == "POST"]


def created(request: Request) -> Response:
    message = twilio_message(sid=f"SM{uuid.uuid4().hex}", to=request.form["To"], body=request.form.get("Body", ""))
    return Response(json.dumps(message), 201, content_type="application/json")


def twilio_error(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), body["status"], headers=headers, content_type="application/json")


@pytest.fixture
def queues(aws: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The send queue and its dead-letter queue in moto, named to the function as the template does."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    urls = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("send-queue", "send-dead-letters")}
    monkeypatch.setenv("SEND_QUEUE_URL", urls["send-queue"])
    monkeypatch.setenv("SEND_DEAD_LETTER_QUEUE_URL", urls["send-dead-letters"])
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://sms.example.com")
    return urls


def held(queue_url: str) -> list[dict[str, Any]]:
    """Every message a moto queue holds, the delayed ones included (a receive shows a delayed copy
    only once its delay is over): its body, its message attributes and its DelaySeconds."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[AWS_ACCOUNT]["us-east-1"].queues[queue_url.rsplit("/", 1)[1]]
    return [
        {
            "body": message.body,
            "attributes": {name: value["StringValue"] for name, value in message.message_attributes.items()},
            "delay": round((message.delayed_until - (message.sent_timestamp or 0)) / 1000)
            if message.delayed_until
            else 0,
        }
        for message in queue._messages
    ]


def redelivered(message: dict[str, Any]) -> dict[str, Any]:
    """A message of a queue delivered to the function again (a delayed copy, a redrive)."""
    return {"Records": [record(message["body"], message["attributes"])]}


# --- Sent: acknowledged, once --------------------------------------------------------------------


def test_a_batch_of_events_is_sent_and_acknowledged(twilio: Any, queues: dict[str, str]) -> None:
    twilio.expect_request(MESSAGES, method="POST").respond_with_handler(created)
    answer = handler(batch(send_event(ONE), send_event(TWO), send_event(dict(ONE, to="+15558675312"))))
    assert answer == {"batchItemFailures": []}
    assert sorted(form["To"] for form in posts(twilio)) == [
        "+15558675310",
        "+15558675310",
        "+15558675311",
        "+15558675312",
    ]
    assert held(queues["send-queue"]) == held(queues["send-dead-letters"]) == []


def test_a_redelivered_event_is_not_sent_twice(twilio: Any, queues: dict[str, str]) -> None:
    """SQS delivers at least once, EventBridge too: the event id is the idempotency key, per recipient."""
    twilio.expect_request(MESSAGES, method="POST").respond_with_handler(created)
    single, several = send_event(ONE), send_event(TWO)
    assert handler(batch(single, several)) == {"batchItemFailures": []}
    assert handler(batch(several, single)) == {"batchItemFailures": []}  # new message ids, same events
    assert len(posts(twilio)) == 3


def test_the_same_event_twice_in_one_batch_is_sent_once(twilio: Any, queues: dict[str, str]) -> None:
    twilio.expect_request(MESSAGES, method="POST").respond_with_handler(created)
    event = send_event(ONE)
    assert handler(batch(event, event)) == {"batchItemFailures": []}
    assert len(posts(twilio)) == 1


# --- Throttled or out of time: a delayed copy, never a batch item failure ------------------------


def test_a_rate_limited_event_is_requeued_with_a_delay_and_acknowledged(twilio: Any, queues: dict[str, str]) -> None:
    """Twilio's Retry-After (30 s) is longer than the invocation may wait: RATE_LIMITED at once.
    A delayed copy goes back to the queue; once Twilio takes sends again, the copy is sent."""
    event = send_event(ONE)
    twilio.expect_oneshot_request(MESSAGES, method="POST").respond_with_response(
        twilio_error(THROTTLED, {"Retry-After": "30"})
    )
    answer = handler(batch(event))
    assert answer == {"batchItemFailures": []}, "a throttled event is never received too often"
    [copy_] = held(queues["send-queue"])
    assert json.loads(copy_["body"]) == event, "the same event: the same idempotency key"
    assert copy_["delay"] == 30, "Twilio's Retry-After"
    assert copy_["attributes"]["REQUEUE_ATTEMPT"] == "1"
    assert abs(float(copy_["attributes"]["FIRST_QUEUED_AT"]) - time.time()) < 60
    assert held(queues["send-dead-letters"]) == []

    twilio.expect_request(MESSAGES, method="POST").respond_with_handler(created)
    assert handler(redelivered(copy_)) == {"batchItemFailures": []}
    assert [form["To"] for form in posts(twilio)] == ["+15558675310", "+15558675310"]  # the 429, then the send
    assert len(held(queues["send-queue"])) == 1, "no new copy"


def test_each_requeue_waits_longer(twilio: Any, queues: dict[str, str]) -> None:
    """Without a Retry-After, the delay doubles with each attempt (with jitter), up to 900 s."""
    handler(batch(send_event(ONE)), remaining_ms=3_000)  # no time to send: re-queued
    [first] = held(queues["send-queue"])
    seventh = dict(first, attributes=dict(first["attributes"], REQUEUE_ATTEMPT="6"))
    handler(redelivered(seventh), remaining_ms=3_000)
    delays = [message["delay"] for message in held(queues["send-queue"])]
    assert 1 <= delays[0] <= 2 and 64 <= delays[1] <= 128, delays
    assert held(queues["send-queue"])[1]["attributes"]["REQUEUE_ATTEMPT"] == "7"


def test_an_event_the_invocation_has_no_time_for_is_requeued(twilio: Any, queues: dict[str, str]) -> None:
    """The deadline keeps time to re-queue what the sends did not reach: with 3 s left, nothing is
    sent (2 s are kept for the re-queue, a send needs more than the rest)."""
    twilio.expect_request(MESSAGES, method="POST").respond_with_handler(created)
    answer = handler(batch(send_event(ONE), send_event(TWO)), remaining_ms=3_000)
    assert answer == {"batchItemFailures": []}
    assert posts(twilio) == []
    assert len(held(queues["send-queue"])) == 2


def test_a_requeue_that_fails_is_a_batch_item_failure(twilio: Any, queues: dict[str, str], monkeypatch: Any) -> None:
    """Only then: SQS delivers the original again, nothing is lost."""
    monkeypatch.setenv("SEND_QUEUE_URL", queues["send-queue"] + "-gone")
    twilio.expect_request(MESSAGES, method="POST").respond_with_response(twilio_error(THROTTLED, {"Retry-After": "30"}))
    event = batch(send_event(ONE))
    assert failures(handler(event)) == [event["Records"][0]["messageId"]]


# --- May pass: batch item failures, SQS delivers them again ---------------------------------------


def test_an_unknown_outcome_is_delivered_again_and_looked_up_before_sending(
    twilio: Any, queues: dict[str, str]
) -> None:
    """Twilio answers 500 to the POST: the message may exist. SQS delivers the event again; the
    event id is the key, so the retry looks on Twilio first and sends once."""
    twilio.expect_oneshot_request(MESSAGES, method="POST").respond_with_response(
        twilio_error({"code": 20500, "message": "Internal Server Error", "status": 500})
    )
    twilio.expect_request(MESSAGES, method="GET").respond_with_json({"messages": []})
    event = batch(send_event(ONE), send_event(dict(ONE, to="+15558675312")))
    twilio.expect_request(MESSAGES, method="POST").respond_with_handler(created)
    first = failures(handler(event))
    assert len(first) == 1 and first[0] in [r["messageId"] for r in event["Records"]]
    assert held(queues["send-queue"]) == held(queues["send-dead-letters"]) == []
    assert handler({"Records": [r for r in event["Records"] if r["messageId"] in first]}) == {"batchItemFailures": []}
    assert len(posts(twilio)) == 3  # the 500, the other event, the retry


def test_a_configuration_error_is_delivered_again_not_dead_lettered(
    aws: Any, twilio: Any, queues: dict[str, str]
) -> None:
    """It may be fixed (a secret restored), and the events then go through."""
    aws.delete_secret(SecretId=aws.list_secrets()["SecretList"][0]["ARN"], ForceDeleteWithoutRecovery=True)
    event = batch(send_event(ONE), send_event(TWO))
    assert failures(handler(event)) == [r["messageId"] for r in event["Records"]]
    assert posts(twilio) == [] and held(queues["send-dead-letters"]) == []


# --- Never passes: straight to the dead-letter queue, acknowledged --------------------------------


@pytest.mark.parametrize(
    ("detail", "code", "fragment"),
    [
        ({"to": "+15558675310"}, "VALIDATION_ERROR", "body"),
        ({**ONE, "taskToken": "AQB8-token"}, "VALIDATION_ERROR", "taskToken"),
        ({**ONE, "to": "+15558675311"}, "TWILIO_REJECTED", "+***5311"),
    ],
    ids=["no-content", "task-token", "twilio-rejected"],
)
def test_a_request_that_can_never_be_sent_goes_to_the_dead_letter_queue(
    twilio: Any, queues: dict[str, str], detail: dict[str, Any], code: str, fragment: str
) -> None:
    twilio.expect_request(MESSAGES, method="POST").respond_with_response(twilio_error(REJECTED))
    event = send_event(detail)
    assert handler(batch(event)) == {"batchItemFailures": []}
    [dead] = held(queues["send-dead-letters"])
    assert json.loads(dead["body"]) == event, "the event as it came: a redrive sends it as it was"
    assert dead["attributes"]["ERROR_CODE"] == code
    assert fragment in dead["attributes"]["ERROR_MESSAGE"]
    assert "+15558675311" not in dead["attributes"]["ERROR_MESSAGE"], "numbers masked"
    assert held(queues["send-queue"]) == []


def test_a_body_that_is_no_event_goes_to_the_dead_letter_queue(twilio: Any, queues: dict[str, str]) -> None:
    event = {"Records": [record("not json"), record(json.dumps({"to": "+15558675310"}))]}
    assert handler(event) == {"batchItemFailures": []}
    dead = held(queues["send-dead-letters"])
    assert [message["body"] for message in dead] == ["not json", '{"to": "+15558675310"}']
    assert {message["attributes"]["ERROR_CODE"] for message in dead} == {"VALIDATION_ERROR"}
    assert posts(twilio) == []


# --- Batch sends: the most retryable recipient decides; a retry sends only what failed ------------


def test_a_batch_send_with_a_rejected_recipient_is_dead_lettered_and_a_redrive_resends_only_it(
    twilio: Any, queues: dict[str, str]
) -> None:
    def answer(request: Request) -> Response:
        return twilio_error(REJECTED) if request.form["To"] == "+15558675311" else created(request)

    twilio.expect_request(MESSAGES, method="POST").respond_with_handler(answer)
    assert handler(batch(send_event(TWO))) == {"batchItemFailures": []}
    [dead] = held(queues["send-dead-letters"])
    assert dead["attributes"]["ERROR_CODE"] == "TWILIO_REJECTED"
    assert dead["attributes"]["ERROR_MESSAGE"] == "1 of 2 recipients failed: +***5311 TWILIO_REJECTED"
    assert handler(redelivered(dead)) == {"batchItemFailures": []}  # an operator's redrive
    sent = [form["To"] for form in posts(twilio)]
    assert sorted(sent[:2]) == ["+15558675310", "+15558675311"] and sent[2:] == ["+15558675311"]
    assert len(held(queues["send-dead-letters"])) == 2, "still rejected: back in the dead-letter queue"


def test_a_batch_send_with_a_throttled_recipient_is_requeued_and_the_copy_sends_only_it(
    twilio: Any, queues: dict[str, str]
) -> None:
    throttled = {"+15558675311": True}

    def answer(request: Request) -> Response:
        if throttled.get(request.form["To"]):
            return twilio_error(THROTTLED, {"Retry-After": "30"})
        return created(request)

    twilio.expect_request(MESSAGES, method="POST").respond_with_handler(answer)
    assert handler(batch(send_event(TWO))) == {"batchItemFailures": []}
    [copy_] = held(queues["send-queue"])
    assert copy_["delay"] == 30
    throttled.clear()
    assert handler(redelivered(copy_)) == {"batchItemFailures": []}
    sent = [form["To"] for form in posts(twilio)]
    assert sorted(sent[:2]) == ["+15558675310", "+15558675311"] and sent[2:] == ["+15558675311"]
    assert held(queues["send-dead-letters"]) == []


# --- The bound: sends in flight shared by every record of the batch --------------------------------


@pytest.fixture
def threaded_twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Twilio fake that answers requests concurrently (pytest-httpserver's default is one at a time)."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(threaded=True)
    server.start()
    monkeypatch.setenv("TWILIO_API_BASE_URL", server.url_for("/").rstrip("/"))
    yield server
    server.clear()
    server.stop()


def test_sends_in_flight_are_bounded_across_the_records_of_a_batch(
    threaded_twilio: Any, queues: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """TwilioConcurrencyLimit 6, two invocations at most (the mapping's MaximumConcurrency): one
    invocation has 3 sends in flight, whatever its records hold (here 6 single sends and a batch
    send to 10), and uses all 3."""
    monkeypatch.setenv("TWILIO_CONCURRENCY_LIMIT", "6")
    lock = threading.Lock()
    in_flight = {"now": 0, "peak": 0}

    def slow(request: Request) -> Response:
        with lock:
            in_flight["now"] += 1
            in_flight["peak"] = max(in_flight["peak"], in_flight["now"])
        time.sleep(0.05)
        with lock:
            in_flight["now"] -= 1
        return created(request)

    threaded_twilio.expect_request(MESSAGES, method="POST").respond_with_handler(slow)
    singles = [send_event(dict(ONE, to=f"+1555867{i:04d}")) for i in range(6)]
    several = send_event({"to": [f"+1555868{i:04d}" for i in range(10)], "body": "Maintenance tonight at 22:00 UTC."})
    assert handler(batch(*singles, several)) == {"batchItemFailures": []}
    assert len(posts(threaded_twilio)) == 16
    assert in_flight["peak"] == 3, in_flight
