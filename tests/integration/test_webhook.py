"""The webhook function with moto's DynamoDB, EventBridge (events captured by an SQS target) and
Step Functions: what reaches the bus, what is suppressed, and which tasks complete."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from tests.support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    MESSAGE_SID,
    ROTATED_AUTH_TOKEN,
    SECRET_ID,
    Bus,
    LambdaContext,
    credentials,
    load_event,
    load_handler,
    twilio_message,
)
from twilio_messaging.webhook_signature import compute_signature, signature_payload

TABLE = "twilio-messaging-state"
SAMPLE_URL = "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod/webhooks/twilio"


@pytest.fixture
def bus(state_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bus]:
    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    yield Bus()


def webhook_event(
    params: list[tuple[str, str]] | None = None,
    *,
    url: str = SAMPLE_URL,
    token: str = AUTH_TOKEN,
    signature: str | None = None,
    idempotency_token: str | None = "token-1",
    base: str = "webhook/status_callback.json",
) -> dict[str, Any]:
    """An events/ webhook file with other parameters, signed for `url` with `token`."""
    event = copy.deepcopy(load_event(base))
    if params is None:
        params = parse_qsl(event["body"], keep_blank_values=True)
    event["body"] = urlencode(params)
    headers = {
        k: v for k, v in event["headers"].items() if k not in ("X-Twilio-Signature", "I-Twilio-Idempotency-Token")
    }
    if signature is None:
        signature = compute_signature(token, signature_payload(url, params))
    if signature:
        headers["X-Twilio-Signature"] = signature
    if idempotency_token:
        headers["I-Twilio-Idempotency-Token"] = idempotency_token
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    return event


def status_params(status: str, sid: str = MESSAGE_SID, error_code: str | None = None) -> list[tuple[str, str]]:
    params = [
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("AccountSid", ACCOUNT_SID),
        ("From", "+15005550006"),
        ("To", "+15558675310"),
        ("ApiVersion", "2010-04-01"),
    ]
    if error_code:
        params.append(("ErrorCode", error_code))
    return params


def call(event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = load_handler("webhook").lambda_handler(event, LambdaContext())
    return answer


# Signatures and API Gateway shapes -------------------------------------------------------------


def test_status_callback_becomes_a_message_status_changed_event(bus: Bus) -> None:
    answer = call(load_event("webhook/status_callback.json"))
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "text/xml"
    assert answer["body"] == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    [event] = bus.published()
    assert event["source"] == "twilio.messaging"
    assert event["detail-type"] == "Message Status Changed"
    detail = event["detail"]
    assert {k: detail[k] for k in ("messageSid", "accountSid", "from", "to", "status", "errorCode")} == {
        "messageSid": MESSAGE_SID,
        "accountSid": ACCOUNT_SID,
        "from": "+15005550006",
        "to": "+15558675310",
        "status": "delivered",
        "errorCode": None,
    }
    assert detail["params"]["RawDlrDoneDate"] == "2611221200"  # unknown parameters are kept


def test_inbound_message_becomes_a_message_received_event_with_its_media(bus: Bus) -> None:
    assert call(load_event("webhook/inbound_message.json"))["statusCode"] == 200
    [event] = bus.published()
    assert event["detail-type"] == "Message Received"
    detail = event["detail"]
    assert detail["body"] == "Your verification is complete."
    assert detail["status"] == "received"
    assert detail["numMedia"] == 1
    assert detail["media"] == [{"url": detail["params"]["MediaUrl0"], "contentType": "image/jpeg"}]
    assert detail["messagingServiceSid"] == "MG" + "0" * 32
    assert detail["params"]["ToCity"] == ""  # blank values kept


@pytest.mark.parametrize(
    "change",
    ["no signature", "wrong token", "other url", "value changed", "parameter added", "stage dropped"],
)
def test_bad_signatures_are_403_and_nothing_is_published_or_stored(bus: Bus, change: str) -> None:
    params = status_params("delivered")
    event = {
        "no signature": lambda: webhook_event(params, signature=""),
        "wrong token": lambda: webhook_event(params, token="not-the-token"),
        "other url": lambda: webhook_event(params, url="https://evil.example/webhooks/twilio"),
        "value changed": lambda: webhook_event(
            params, signature=compute_signature(AUTH_TOKEN, signature_payload(SAMPLE_URL, status_params("failed")))
        ),
        "parameter added": lambda: webhook_event(
            [*params, ("Extra", "1")], signature=compute_signature(AUTH_TOKEN, signature_payload(SAMPLE_URL, params))
        ),
        "stage dropped": lambda: webhook_event(params, url=SAMPLE_URL.replace("/prod", "")),
    }[change]()
    answer = call(event)
    assert answer["statusCode"] == 403
    assert json.loads(answer["body"])["error"]["code"] == "INVALID_SIGNATURE"
    assert bus.published() == []
    import boto3

    assert boto3.client("dynamodb", region_name="us-east-1").scan(TableName=TABLE)["Items"] == []


def test_rejections_and_acceptances_are_counted(bus: Bus, capsys: pytest.CaptureFixture[str]) -> None:
    call(webhook_event(status_params("sent"), signature="bm9wZQ=="))
    call(webhook_event(status_params("sent")))
    call(webhook_event(status_params("sent")))
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = [name for document in metrics for name in document if name in ("WebhooksRejected", "WebhooksAccepted")]
    assert sorted(names) == ["WebhooksAccepted", "WebhooksRejected"]
    assert any(
        document.get("DuplicatesSuppressed") == [1.0] or document.get("DuplicatesSuppressed") == 1.0
        for document in metrics
    )


def test_custom_domain_uses_public_base_url(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://sms.example.com/v1")
    params = status_params("sent")
    assert call(webhook_event(params, url="https://sms.example.com/v1/webhooks/twilio"))["statusCode"] == 200
    assert call(webhook_event(params, idempotency_token="other"))["statusCode"] == 403  # execute-api URL now wrong


def test_base64_body_lower_case_headers_and_query_string(bus: Bus) -> None:
    params = [
        *status_params("sent"),
        ("Body", "Ça coûte 5€ + taxes 'incl.'"),
        ("Empty", ""),
        ("Tag", "b"),
        ("Tag", "a"),
    ]
    url = SAMPLE_URL + "?tenant=acme&region=eu%20west"
    event = webhook_event(params, url=url)
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    event["headers"] = {k.lower(): v for k, v in event["headers"].items()}
    event["queryStringParameters"] = {"tenant": "acme", "region": "eu west"}
    event["multiValueQueryStringParameters"] = {"tenant": ["acme"], "region": ["eu west"]}
    assert call(event)["statusCode"] == 200
    [published] = bus.published()
    assert published["detail"]["params"]["Tag"] == ["b", "a"]
    assert published["detail"]["params"]["Empty"] == ""


def test_default_port_in_the_signed_url_is_accepted(bus: Bus) -> None:
    params = status_params("sent")
    assert call(webhook_event(params, url=SAMPLE_URL.replace(".com/", ".com:443/")))["statusCode"] == 200


def test_secondary_token_and_shared_keys(bus: Bus, aws: Any) -> None:
    aws.put_secret_value(
        SecretId=SECRET_ID,
        SecretString=json.dumps(
            credentials(secondaryAuthToken=ROTATED_AUTH_TOKEN, webhookSharedKeys={"key-1": "shared-secret-value"})
        ),
    )
    assert (
        call(webhook_event(status_params("sent"), token=ROTATED_AUTH_TOKEN, idempotency_token="a"))["statusCode"] == 200
    )
    import base64 as b64
    import hmac

    params = status_params("delivered")
    digest = hmac.new(b"shared-secret-value", signature_payload(SAMPLE_URL, params).encode(), hashlib.sha256).digest()
    event = webhook_event(params, signature=b64.b64encode(digest).decode(), idempotency_token="b")
    event["headers"]["X-Twilio-Webhooks-Signature-Settings"] = "key=key-1,algorithm=HMAC_SHA256"
    assert call(event)["statusCode"] == 200
    assert len(bus.published()) == 2


def test_json_webhook_with_body_hash(bus: Bus) -> None:
    body = json.dumps({"MessageSid": MESSAGE_SID, "MessageStatus": "delivered", "To": "+15558675310"})
    url = f"{SAMPLE_URL}?bodySHA256={hashlib.sha256(body.encode()).hexdigest()}"
    event = webhook_event([], url=url)
    event["body"] = body
    event["headers"]["Content-Type"] = "application/json"
    event["queryStringParameters"] = {"bodySHA256": url.split("=")[1]}
    event["multiValueQueryStringParameters"] = {"bodySHA256": [url.split("=")[1]]}
    assert call(event)["statusCode"] == 200
    [published] = bus.published()
    assert published["detail"]["status"] == "delivered"
    event["body"] = body.replace("delivered", "failed")  # the hash no longer matches
    event["headers"]["I-Twilio-Idempotency-Token"] = "another"
    assert call(event)["statusCode"] == 403


def test_rotated_token_is_read_again_when_the_cached_one_is_old(bus: Bus, aws: Any, monkeypatch: Any) -> None:
    from twilio_messaging.credentials import CredentialStore

    assert call(webhook_event(status_params("sent"), idempotency_token="1"))["statusCode"] == 200
    aws.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps(credentials(authToken=ROTATED_AUTH_TOKEN)))
    rotated = webhook_event(status_params("delivered"), token=ROTATED_AUTH_TOKEN, idempotency_token="2")
    assert call(rotated)["statusCode"] == 403  # the cache is fresh: no re-read for a failure
    monkeypatch.setattr(CredentialStore, "reread_interval", 0.0)
    assert call(rotated)["statusCode"] == 200


# De-duplication and failures -------------------------------------------------------------------


def test_a_repeated_delivery_is_answered_200_and_not_published_again(bus: Bus) -> None:
    event = load_event("webhook/status_callback.json")
    assert call(event)["statusCode"] == 200
    assert call(event)["statusCode"] == 200
    assert len(bus.published()) == 1


def test_without_idempotency_token_sid_and_status_deduplicate(bus: Bus) -> None:
    for status in ("sent", "delivered", "sent", "delivered"):
        assert call(webhook_event(status_params(status), idempotency_token=None))["statusCode"] == 200
    assert [e["detail"]["status"] for e in bus.published()] == ["sent", "delivered"]


def test_a_replay_with_another_or_no_idempotency_token_is_a_duplicate(bus: Bus) -> None:
    """The token is not signed: a captured callback replayed with a new one must not publish again."""
    assert call(webhook_event(status_params("delivered"), idempotency_token="t-1"))["statusCode"] == 200
    assert call(webhook_event(status_params("delivered"), idempotency_token="forged"))["statusCode"] == 200
    assert call(webhook_event(status_params("delivered"), idempotency_token=None))["statusCode"] == 200
    inbound = [("MessageSid", MESSAGE_SID), ("AccountSid", ACCOUNT_SID), ("From", "+15558675310"), ("Body", "Hi")]
    inbound_event = "webhook/inbound_message.json"
    assert call(webhook_event(inbound, base=inbound_event, idempotency_token="i-1"))["statusCode"] == 200
    assert call(webhook_event(inbound, base=inbound_event, idempotency_token="i-2"))["statusCode"] == 200
    published = bus.published()
    assert [e["detail-type"] for e in published] == ["Message Status Changed", "Message Received"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xff\xfe not UTF-8", "application/x-www-form-urlencoded"),
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"[" * 100_000, "application/json"),
    ],
)
def test_a_forged_signature_with_a_body_that_cannot_be_parsed_is_403_and_counted(
    bus: Bus, capsys: pytest.CaptureFixture[str], body: bytes, content_type: str
) -> None:
    event = webhook_event(status_params("sent"), signature="bm9wZQ==")
    event["body"] = base64.b64encode(body).decode()
    event["isBase64Encoded"] = True
    event["headers"]["Content-Type"] = content_type
    answer = call(event)
    assert answer["statusCode"] == 403
    assert json.loads(answer["body"])["error"]["code"] == "INVALID_SIGNATURE"
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any("WebhooksRejected" in document for document in metrics)
    assert bus.published() == []


def test_a_status_that_would_move_the_message_back_is_answered_200_and_not_published(bus: Bus) -> None:
    assert call(webhook_event(status_params("delivered"), idempotency_token="t-2"))["statusCode"] == 200
    assert call(webhook_event(status_params("sent"), idempotency_token="t-1"))["statusCode"] == 200
    assert [e["detail"]["status"] for e in bus.published()] == ["delivered"]


def test_put_events_failure_answers_5xx_and_twilios_retry_is_processed(bus: Bus, monkeypatch: Any) -> None:
    from twilio_messaging.aws_json import AwsJsonClient

    real_call = AwsJsonClient.call
    failures = {"left": 1}

    def partial_failure(self: AwsJsonClient, operation: str, payload: dict[str, Any], timeout: Any = None) -> Any:
        if operation == "PutEvents" and failures["left"]:
            failures["left"] -= 1
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"}]}
        return real_call(self, operation, payload, timeout)

    monkeypatch.setattr(AwsJsonClient, "call", partial_failure)
    event = load_event("webhook/status_callback.json")
    failed = call(event)
    assert failed["statusCode"] == 503
    assert json.loads(failed["body"])["error"]["code"] == "AWS_SERVICE_UNAVAILABLE"
    assert bus.published() == []
    assert call(event)["statusCode"] == 200  # Twilio's retry, same idempotency token
    assert len(bus.published()) == 1


def test_put_events_refused_answers_5xx_and_releases_the_claim(bus: Bus, monkeypatch: Any) -> None:
    from twilio_messaging.aws_json import AwsCallFailed, AwsJsonClient

    real_call = AwsJsonClient.call
    failures = {"left": 3}  # every attempt of the first delivery

    def throttled(self: AwsJsonClient, operation: str, payload: dict[str, Any], timeout: Any = None) -> Any:
        if operation == "PutEvents" and failures["left"]:
            failures["left"] -= 1
            raise AwsCallFailed("ThrottlingException", 400)
        return real_call(self, operation, payload, timeout)

    monkeypatch.setattr(AwsJsonClient, "call", throttled)
    event = load_event("webhook/status_callback.json")
    assert call(event)["statusCode"] == 503
    assert call(event)["statusCode"] == 200
    assert len(bus.published()) == 1


def test_concurrent_deliveries_publish_once(bus: Bus) -> None:
    event = load_event("webhook/status_callback.json")
    answers: list[int] = []
    barrier = threading.Barrier(20)

    def deliver() -> None:
        barrier.wait()
        answers.append(call(copy.deepcopy(event))["statusCode"])

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(bus.published()) == 1
    assert set(answers) <= {200, 409}  # 409: another delivery of it is being processed right now
    assert call(event)["statusCode"] == 200


def test_missing_state_table_is_a_configuration_error(aws: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("STATE_TABLE_NAME", raising=False)
    answer = call(load_event("webhook/status_callback.json"))
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"])["error"]["code"] == "CONFIGURATION_ERROR"


def test_direct_invocation_is_refused(bus: Bus) -> None:
    from twilio_messaging.errors import ValidationError

    with pytest.raises(ValidationError):
        load_handler("webhook").lambda_handler({"MessageSid": MESSAGE_SID}, LambdaContext())


# Step Functions task tokens -----------------------------------------------------------------------


class Workflow:
    """A moto state machine whose task waits for a token (handed out through an SQS queue, as a
    Lambda task would receive it in its payload)."""

    def __init__(self) -> None:
        import boto3

        self.sfn = boto3.client("stepfunctions", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.queue_url = self.sqs.create_queue(QueueName="task-tokens")["QueueUrl"]
        definition = {
            "StartAt": "Wait",
            "States": {
                "Wait": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {"QueueUrl": self.queue_url, "MessageBody": {"taskToken.$": "$$.Task.Token"}},
                    "End": True,
                }
            },
        }
        self.machine = self.sfn.create_state_machine(
            name="wait", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]

    def start(self) -> tuple[str, str]:
        execution = self.sfn.start_execution(stateMachineArn=self.machine)["executionArn"]
        for _ in range(100):
            messages = self.sqs.receive_message(QueueUrl=self.queue_url).get("Messages")
            if messages:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
                return execution, json.loads(messages[0]["Body"])["taskToken"]
            time.sleep(0.05)
        raise AssertionError("the execution never handed out its task token")

    def outcome(self, execution: str) -> dict[str, Any]:
        for _ in range(100):
            described: dict[str, Any] = self.sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.05)
        return described


@pytest.fixture
def workflow(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workflow]:
    from moto.core.config import default_user_config

    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    yield Workflow()


def send_with_token(twilio: Any, task_token: str, sid: str = MESSAGE_SID) -> dict[str, Any]:
    twilio.expect_oneshot_request(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", method="POST").respond_with_json(
        twilio_message(sid=sid), status=201
    )
    return load_handler("send_message").lambda_handler(
        {"to": "+15558675310", "body": "Your order #1234 has shipped.", "taskToken": task_token}, LambdaContext()
    )


@pytest.fixture
def public_url(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod")
    return SAMPLE_URL


def test_delivered_completes_the_task_with_the_status_detail(workflow: Workflow, twilio: Any, public_url: str) -> None:
    execution, token = workflow.start()
    sent = send_with_token(twilio, token)
    assert sent["sid"] == MESSAGE_SID
    assert dict(parse_qsl(twilio.log[0][0].get_data(as_text=True)))["StatusCallback"] == public_url
    assert workflow.outcome(execution)["status"] == "RUNNING"
    call(webhook_event(status_params("sent"), idempotency_token="s1"))
    assert workflow.outcome(execution)["status"] == "RUNNING"  # not final yet
    call(webhook_event(status_params("delivered"), idempotency_token="s2"))
    outcome = workflow.outcome(execution)
    assert outcome["status"] == "SUCCEEDED"
    output = json.loads(outcome["output"])
    assert (output["messageSid"], output["status"]) == (MESSAGE_SID, "delivered")


def test_undelivered_fails_the_task_with_message_delivery_failed(
    workflow: Workflow, twilio: Any, public_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twilio_messaging.aws_json import AwsJsonClient

    sent_to_step_functions: list[dict[str, Any]] = []
    real_call = AwsJsonClient.call

    def spy(self: AwsJsonClient, operation: str, payload: dict[str, Any], timeout: Any = None) -> Any:
        if operation.startswith("SendTask"):
            sent_to_step_functions.append({"operation": operation, **payload})
        return real_call(self, operation, payload, timeout)

    monkeypatch.setattr(AwsJsonClient, "call", spy)
    execution, token = workflow.start()
    send_with_token(twilio, token)
    call(webhook_event(status_params("undelivered", error_code="30003"), idempotency_token="u1"))
    outcome = workflow.outcome(execution)
    assert outcome["status"] == "FAILED"
    assert outcome["error"] == "MessageDeliveryFailed"
    # moto drops the cause of SendTaskFailure: check what was sent instead.
    [failure] = sent_to_step_functions
    assert failure["operation"] == "SendTaskFailure"
    assert json.loads(failure["cause"]) == {
        "messageSid": MESSAGE_SID,
        "status": "undelivered",
        "errorCode": 30003,
        "to": "+15558675310",
    }


def test_a_task_the_function_may_not_complete_does_not_hold_back_the_event(
    bus: Bus, twilio: Any, public_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A token from a state machine outside TaskTokenStateMachineArns: IAM refuses the completion.
    The callback is still answered 200 and published, once; the refusal is counted."""
    from twilio_messaging.aws_json import AwsCallFailed, AwsJsonClient

    real_call = AwsJsonClient.call

    def denied(self: AwsJsonClient, operation: str, payload: dict[str, Any], timeout: Any = None) -> Any:
        if operation.startswith("SendTask"):
            raise AwsCallFailed("AccessDeniedException", 400)
        return real_call(self, operation, payload, timeout)

    monkeypatch.setattr(AwsJsonClient, "call", denied)
    send_with_token(twilio, "token-of-another-state-machine")
    assert call(webhook_event(status_params("delivered")))["statusCode"] == 200
    assert [e["detail"]["status"] for e in bus.published()] == ["delivered"]
    assert "TaskCompletionsRefused" in capsys.readouterr().out


def test_a_callback_before_the_token_is_stored_still_completes_the_task(
    workflow: Workflow, twilio: Any, public_url: str
) -> None:
    execution, token = workflow.start()
    # Twilio's status callback outruns the send's own answer: the webhook sees no token yet.
    assert call(webhook_event(status_params("delivered"), idempotency_token="early"))["statusCode"] == 200
    assert workflow.outcome(execution)["status"] == "RUNNING"
    send_with_token(twilio, token)  # stores the token, finds the final status, completes
    assert workflow.outcome(execution)["status"] == "SUCCEEDED"


def test_the_first_final_status_wins(workflow: Workflow, twilio: Any, public_url: str) -> None:
    execution, token = workflow.start()
    send_with_token(twilio, token)
    call(webhook_event(status_params("delivered"), idempotency_token="d"))
    call(webhook_event(status_params("read"), idempotency_token="r"))
    outcome = workflow.outcome(execution)
    assert outcome["status"] == "SUCCEEDED"
    assert json.loads(outcome["output"])["status"] == "delivered"


def test_task_token_needs_one_recipient_and_the_default_callback(aws: Any, twilio: Any, public_url: str) -> None:
    from twilio_messaging.errors import ValidationError

    send = load_handler("send_message").lambda_handler
    for extra in (
        {"to": ["+15558675310", "+15558675311"]},
        {"statusCallback": None},
        {"statusCallback": "https://example.com/cb"},
    ):
        with pytest.raises(ValidationError) as raised:
            send({"to": "+15558675310", "body": "x", "taskToken": "token", **extra}, LambdaContext())
        assert "taskToken" in str(raised.value)
    assert twilio.log == []
