"""send_message end to end: moto's Secrets Manager, a loopback Twilio, every invocation source."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

import pytest
from werkzeug import Request, Response

from tests.support import (
    ACCOUNT_SID,
    API_KEY_SECRET,
    API_KEY_SID,
    AUTH_TOKEN,
    MESSAGE_SID,
    ROTATED_AUTH_TOKEN,
    SECRET_ID,
    SECRETS,
    api_event,
    credentials,
    load_event,
    load_handler,
    twilio_message,
)
from twilio_messaging import errors

MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
WEBHOOK = "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod/webhooks/twilio"
SERVICE = "MG0123456789abcdef0123456789abcdef"


def send(event: Any, context: Any) -> Any:
    return load_handler("send_message").lambda_handler(event, context)


def received_forms(twilio: Any) -> list[list[tuple[str, str]]]:
    return [parse_qsl(request.get_data(as_text=True), keep_blank_values=True) for request, _ in twilio.log]


def basic_auth(request: Request) -> tuple[str, str]:
    user, _, password = base64.b64decode(request.headers["Authorization"].split()[1]).decode().partition(":")
    return user, password


def wait_for_requests(twilio: Any, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(twilio.log) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def accept(twilio: Any, **fields: Any) -> None:
    twilio.expect_request(MESSAGES, method="POST").respond_with_json(twilio_message(**fields), status=201)


def test_api_send_posts_the_form_and_answers_201_with_a_message(aws: Any, twilio: Any, context: Any) -> None:
    accept(twilio)
    answer = send(load_event("send_message/api_gateway.json"), context)
    assert answer["statusCode"] == 201
    message = json.loads(answer["body"])
    assert message["sid"] == MESSAGE_SID and message["numSegments"] == 1
    assert message["dateCreated"] == "2015-07-30T20:12:31Z"
    assert received_forms(twilio) == [
        [
            ("To", "+15558675310"),
            ("From", "+15005550006"),
            ("Body", "Your order #1234 has shipped."),
            ("StatusCallback", WEBHOOK),  # this deployment's webhook, derived from the request
        ]
    ]
    request = twilio.log[0][0]
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert basic_auth(request) == (ACCOUNT_SID, AUTH_TOKEN)


def test_api_key_credentials_are_used_when_present(aws_with_api_key: Any, twilio: Any, context: Any) -> None:
    accept(twilio)
    send(load_event("send_message/api_gateway.json"), context)
    assert basic_auth(twilio.log[0][0]) == (API_KEY_SID, API_KEY_SECRET)


def test_mms_sends_media_urls_as_repeated_keys_and_booleans(aws: Any, twilio: Any, context: Any) -> None:
    accept(twilio)
    body = {
        "to": "+15558675310",
        "mediaUrl": ["https://demo.twilio.com/owl.png", "https://demo.twilio.com/logo.png"],
        "sendAsMms": True,
        "shortenUrls": False,
        "validityPeriod": 600,
        "statusCallback": None,
    }
    answer = send(api_event("send_message/api_gateway.json", body=body), context)
    assert answer["statusCode"] == 201
    assert received_forms(twilio) == [
        [
            ("To", "+15558675310"),
            ("From", "+15005550006"),
            ("MediaUrl", "https://demo.twilio.com/owl.png"),
            ("MediaUrl", "https://demo.twilio.com/logo.png"),
            ("ValidityPeriod", "600"),
            ("ShortenUrls", "false"),
            ("SendAsMms", "true"),
        ]
    ]


def test_scheduled_send_carries_send_at_and_schedule_type(aws: Any, twilio: Any, context: Any) -> None:
    accept(twilio, status="scheduled")
    send_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86_400))
    body = {
        "to": "+15558675310",
        "messagingServiceSid": SERVICE,
        "body": "Reminder",
        "sendAt": send_at,
        "statusCallback": "https://hooks.example.com/s",
    }
    answer = send(api_event("send_message/api_gateway.json", body=body), context)
    assert json.loads(answer["body"])["status"] == "scheduled"
    assert received_forms(twilio) == [
        [
            ("To", "+15558675310"),
            ("MessagingServiceSid", SERVICE),
            ("Body", "Reminder"),
            ("StatusCallback", "https://hooks.example.com/s"),
            ("SendAt", send_at),
            ("ScheduleType", "fixed"),
        ]
    ]


def test_eventbridge_whatsapp_template_sends_content_variables_as_json(
    aws: Any, state_table: str, twilio: Any, context: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://sms.example.com/v1")
    accept(twilio)
    answer = send(load_event("send_message/eventbridge.json"), context)
    assert answer["sid"] == MESSAGE_SID  # no HTTP envelope
    form = dict(received_forms(twilio)[0])
    assert form["To"] == "whatsapp:+15558675310" and form["From"] == "whatsapp:+15005550006"
    assert form["ContentSid"] == "HX0123456789abcdef0123456789abcdef"
    assert json.loads(form["ContentVariables"]) == {"1": "12/1", "2": "3pm"}
    assert form["StatusCallback"] == "https://sms.example.com/v1/webhooks/twilio"


def test_step_functions_payload_reads_the_webhook_url_from_ssm(
    aws: Any, state_table: str, twilio: Any, context: Any, monkeypatch: Any
) -> None:
    import boto3

    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/stack/public-base-url",
        Value="https://abc123defg.execute-api.us-east-1.amazonaws.com/prod",
        Type="String",
    )
    monkeypatch.setenv("PUBLIC_BASE_URL_PARAMETER", "/stack/public-base-url")
    accept(twilio)
    answer = send(load_event("send_message/step_functions.json"), context)
    assert answer["sid"] == MESSAGE_SID
    form = received_forms(twilio)[0]
    assert ("MediaUrl", "https://demo.twilio.com/owl.png") in form
    assert ("StatusCallback", WEBHOOK) in form


def test_batch_sends_to_each_recipient_and_reports_failures(aws: Any, twilio: Any, context: Any) -> None:
    def respond(request: Request) -> Response:
        to = request.form["To"]
        if to == "+15558675312":
            return Response(
                json.dumps(
                    {
                        "code": 21211,
                        "message": "Invalid 'To' Phone Number",
                        "more_info": "https://www.twilio.com/docs/errors/21211",
                        "status": 400,
                    }
                ),
                400,
                content_type="application/json",
            )
        return Response(json.dumps(twilio_message(to=to)), 201, content_type="application/json")

    twilio.expect_request(MESSAGES, method="POST").respond_with_handler(respond)
    body = {"to": ["+15558675310", "+15558675311", "+15558675312"], "body": "Hi all"}
    answer = send(api_event("send_message/api_gateway.json", body=body), context)
    assert answer["statusCode"] == 200
    result = json.loads(answer["body"])
    assert sorted(m["to"] for m in result["messages"]) == ["+15558675310", "+15558675311"]
    assert result["failed"] == [
        {
            "to": "+15558675312",
            "error": {
                "code": "TWILIO_REJECTED",
                "message": "Invalid 'To' Phone Number",
                "twilioCode": 21211,
                "moreInfo": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            },
        }
    ]
    assert result["failedNumbers"] == "+15558675312"
    assert sorted(dict(f)["To"] for f in received_forms(twilio)) == ["+15558675310", "+15558675311", "+15558675312"]


def test_batch_file_in_events_runs(aws: Any, state_table: str, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGES, method="POST").respond_with_handler(
        lambda r: Response(json.dumps(twilio_message(to=r.form["To"])), 201, content_type="application/json")
    )
    answer = send(load_event("send_message/api_gateway_batch.json"), context)
    result = json.loads(answer["body"])
    assert answer["statusCode"] == 200 and len(result["messages"]) == 2 and result["failedNumbers"] == ""


REJECTED = {
    "code": 21211,
    "message": "The 'To' number +15558675310 is not a valid phone number.",
    "more_info": "https://www.twilio.com/docs/errors/21211",
    "status": 400,
}


def test_twilio_rejection_over_http_is_400_with_twilio_code(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGES, method="POST").respond_with_json(REJECTED, status=400)
    answer = send(load_event("send_message/api_gateway.json"), context)
    assert answer["statusCode"] == 400
    error = json.loads(answer["body"])["error"]
    assert error["code"] == "TWILIO_REJECTED" and error["twilioCode"] == 21211
    assert error["moreInfo"] == "https://www.twilio.com/docs/errors/21211"


def test_twilio_rejection_on_direct_invoke_raises_twilio_request_rejected(
    aws: Any, state_table: str, twilio: Any, context: Any
) -> None:
    twilio.expect_request(MESSAGES, method="POST").respond_with_json(REJECTED, status=400)
    with pytest.raises(errors.TwilioRequestRejected) as caught:
        send(load_event("send_message/step_functions.json"), context)
    detail = json.loads(str(caught.value))
    assert detail["twilioCode"] == 21211 and detail["status"] == 400 and detail["moreInfo"].endswith("21211")
    assert len(twilio.log) == 1


def test_rate_limit_is_waited_out_then_sent(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_ordered_request(MESSAGES, method="POST").respond_with_json(
        {"code": 20429, "message": "Too Many Requests", "status": 429}, status=429, headers={"Retry-After": "1"}
    )
    twilio.expect_ordered_request(MESSAGES, method="POST").respond_with_json(twilio_message(), status=201)
    started = time.monotonic()
    answer = send(load_event("send_message/api_gateway.json"), context)
    assert answer["statusCode"] == 201
    assert len(twilio.log) == 2
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured


def test_rate_limit_beyond_the_remaining_time_is_429_with_retry_after(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGES, method="POST").respond_with_json(
        {"code": 20429, "message": "Too Many Requests", "status": 429}, status=429, headers={"Retry-After": "120"}
    )
    answer = send(load_event("send_message/api_gateway.json"), context)
    assert answer["statusCode"] == 429 and answer["headers"]["Retry-After"] == "120"
    assert json.loads(answer["body"])["error"]["code"] == "RATE_LIMITED"
    assert len(twilio.log) == 1


def test_server_error_on_a_send_is_outcome_unknown_and_never_repeated(
    aws: Any, state_table: str, twilio: Any, context: Any
) -> None:
    twilio.expect_request(MESSAGES, method="POST").respond_with_json(
        {"code": 20500, "message": "Internal Server Error", "status": 500}, status=500
    )
    twilio.expect_request(MESSAGES, method="GET").respond_with_json({"messages": []})
    with pytest.raises(errors.SendOutcomeUnknown) as raised:
        send(load_event("send_message/step_functions.json"), context)
    assert [r.method for r, _ in twilio.log] == ["POST", "GET"]  # one send, then a look for its message
    assert "Twilio lists no such message yet" in str(raised.value)
    answer = send(load_event("send_message/api_gateway.json"), context)
    assert answer["statusCode"] == 502 and json.loads(answer["body"])["error"]["code"] == "SEND_OUTCOME_UNKNOWN"
    assert [r.method for r, _ in twilio.log].count("POST") == 2


def test_timeout_on_a_send_is_outcome_unknown_504(aws: Any, twilio: Any, context: Any) -> None:
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(5)
        return Response(json.dumps(twilio_message()), 201, content_type="application/json")

    twilio.expect_request(MESSAGES, method="POST").respond_with_handler(slow)
    context.remaining_ms = 1500  # the call must give up within the function's remaining time
    answer = send(load_event("send_message/api_gateway.json"), context)
    release.set()
    assert answer["statusCode"] == 504
    assert json.loads(answer["body"])["error"]["code"] == "SEND_OUTCOME_UNKNOWN"
    wait_for_requests(twilio, 1)  # the fake finishes its answer before the next test starts
    assert len(twilio.log) == 1


def test_rotated_secret_is_read_again_after_401(aws: Any, twilio: Any, context: Any, monkeypatch: Any) -> None:
    from twilio_messaging.credentials import CredentialStore

    reads = []
    original = CredentialStore._read
    monkeypatch.setattr(CredentialStore, "_read", lambda self, deadline: reads.append(1) or original(self, deadline))
    monkeypatch.setattr(CredentialStore, "reread_interval", 0.0)  # as if the secret was read a minute ago

    def unauthorized_then_rotate(request: Request) -> Response:
        aws.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps(credentials(authToken=ROTATED_AUTH_TOKEN)))
        return Response(
            json.dumps({"code": 20003, "message": "Authenticate", "status": 401}), 401, content_type="application/json"
        )

    twilio.expect_ordered_request(MESSAGES, method="POST").respond_with_handler(unauthorized_then_rotate)
    twilio.expect_ordered_request(MESSAGES, method="POST").respond_with_json(twilio_message(), status=201)
    answer = send(load_event("send_message/api_gateway.json"), context)
    assert answer["statusCode"] == 201
    assert [basic_auth(r)[1] for r, _ in twilio.log] == [AUTH_TOKEN, ROTATED_AUTH_TOKEN]
    assert len(reads) == 2


def test_credentials_twilio_keeps_refusing_are_a_configuration_error(
    aws: Any, twilio: Any, context: Any, monkeypatch: Any
) -> None:
    from twilio_messaging.credentials import CredentialStore

    monkeypatch.setattr(CredentialStore, "reread_interval", 0.0)
    twilio.expect_request(MESSAGES, method="POST").respond_with_json(
        {"code": 20003, "message": "Authenticate", "status": 401}, status=401
    )
    answer = send(load_event("send_message/api_gateway.json"), context)
    assert answer["statusCode"] == 500
    error = json.loads(answer["body"])["error"]
    assert error["code"] == "CONFIGURATION_ERROR" and error["twilioCode"] == 20003
    assert len(twilio.log) == 2  # once, then once more with the secret read again


def test_401s_read_the_secret_again_at_most_once_a_minute(
    aws: Any, twilio: Any, context: Any, monkeypatch: Any
) -> None:
    """A host that always answers 401 (a raw request can choose one) costs no Secrets Manager
    read per call: the secret is read again only when the one in hand is a minute old."""
    from twilio_messaging.credentials import CredentialStore

    reads = []
    original = CredentialStore._read
    monkeypatch.setattr(CredentialStore, "_read", lambda self, deadline: reads.append(1) or original(self, deadline))
    twilio.expect_request(MESSAGES, method="POST").respond_with_json(
        {"code": 20003, "message": "Authenticate", "status": 401}, status=401
    )
    for _ in range(20):
        assert send(load_event("send_message/api_gateway.json"), context)["statusCode"] == 500
    assert len(reads) == 1
    assert len(twilio.log) == 20

    monkeypatch.setattr(CredentialStore, "reread_interval", 0.0)  # a minute later
    send(load_event("send_message/api_gateway.json"), context)
    assert len(reads) == 2 and len(twilio.log) == 22


def test_a_secret_another_call_read_since_is_used_without_reading_again(aws: Any, context: Any) -> None:
    from twilio_messaging.credentials import CredentialStore

    store = CredentialStore(SECRET_ID, 300)
    first = store.get()
    aws.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps(credentials(authToken=ROTATED_AUTH_TOKEN)))
    store.reread_interval = 0.0
    second = store.reread_after_rejection(first)  # read again: the one rejected was in hand
    assert second is not None and second.auth_token == ROTATED_AUTH_TOKEN
    store.reread_interval = 60.0
    assert store.reread_after_rejection(first) is second  # another call has read it since: no read
    assert store.reread_after_rejection(second) is None  # recent: no read, no repeat


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        ({"authToken": AUTH_TOKEN}, "accountSid"),
        ({"accountSid": ACCOUNT_SID}, "authToken"),
        ({"accountSid": ACCOUNT_SID, "apiKeySid": API_KEY_SID, "authToken": AUTH_TOKEN}, "apiKeySecret"),
    ],
)
def test_malformed_secret_is_a_configuration_error_naming_the_field(
    aws: Any, twilio: Any, context: Any, logs: Any, secret: dict[str, str], fragment: str
) -> None:
    aws.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps(secret))
    answer = send(load_event("send_message/api_gateway.json"), context)
    assert answer["statusCode"] == 500
    error = json.loads(answer["body"])["error"]
    assert error["code"] == "CONFIGURATION_ERROR" and fragment in error["message"]
    assert AUTH_TOKEN not in answer["body"] and AUTH_TOKEN not in logs.getvalue()
    with pytest.raises(errors.ConfigurationError):
        send(load_event("send_message/step_functions.json"), context)
    assert twilio.log == []


def test_missing_secret_is_a_configuration_error(aws: Any, twilio: Any, context: Any) -> None:
    aws.delete_secret(SecretId=SECRET_ID, ForceDeleteWithoutRecovery=True)
    answer = send(load_event("send_message/api_gateway.json"), context)
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"])["error"]["code"] == "CONFIGURATION_ERROR"
    assert twilio.log == []


def test_logs_hold_no_secret_no_body_and_no_full_number(
    aws_with_api_key: Any, twilio: Any, context: Any, logs: Any
) -> None:
    accept(twilio)
    twilio.expect_request(MESSAGES, method="POST").respond_with_json(REJECTED, status=400)
    send(load_event("send_message/api_gateway.json"), context)
    twilio.clear_all_handlers()
    twilio.expect_request(MESSAGES, method="POST").respond_with_json(REJECTED, status=400)
    send(load_event("send_message/api_gateway.json"), context)
    output = logs.getvalue()
    assert "Message sent" in output and "Request failed" in output  # the logs were captured
    for secret in SECRETS:
        assert secret not in output
    assert "Your order #1234 has shipped." not in output
    assert "+15558675310" not in output and "+***5310" in output


def test_without_credentials_in_the_environment_boto3_reads_the_secret(
    aws: Any, twilio: Any, context: Any, monkeypatch: Any, tmp_path: Any
) -> None:
    """A laptop with a profile: no AWS_ACCESS_KEY_ID in the environment, boto3's chain finds one."""
    profile = tmp_path / "credentials"
    profile.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(profile))
    accept(twilio)
    answer = send(load_event("send_message/api_gateway.json"), context)
    assert answer["statusCode"] == 201
    assert basic_auth(twilio.log[0][0]) == (ACCOUNT_SID, AUTH_TOKEN)


def test_over_http_a_long_rate_limit_is_answered_before_api_gateway_times_out(
    aws: Any, twilio: Any, context: Any
) -> None:
    twilio.expect_request(MESSAGES, method="POST").respond_with_json(
        {"code": 20429, "message": "Too Many Requests", "status": 429}, status=429, headers={"Retry-After": "28"}
    )
    context.remaining_ms = 60_000  # the function could wait, API Gateway (29 s) could not
    answer = send(load_event("send_message/api_gateway.json"), context)
    assert answer["statusCode"] == 429 and answer["headers"]["Retry-After"] == "28"
    assert len(twilio.log) == 1


def test_batch_with_a_missing_secret_fails_once_with_500(aws: Any, twilio: Any, context: Any) -> None:
    aws.delete_secret(SecretId=SECRET_ID, ForceDeleteWithoutRecovery=True)
    answer = send(load_event("send_message/api_gateway_batch.json"), context)
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"])["error"]["code"] == "CONFIGURATION_ERROR"
    assert twilio.log == []


def test_an_unreadable_url_parameter_is_not_read_again_on_every_send(
    aws: Any, state_table: str, twilio: Any, context: Any, monkeypatch: Any
) -> None:
    from twilio_messaging.aws_json import AwsJsonClient

    reads: list[str] = []
    original = AwsJsonClient.call

    def counting(self: AwsJsonClient, operation: str, payload: dict[str, Any], timeout: Any = None) -> Any:
        if operation == "GetParameter":
            reads.append(payload["Name"])
        return original(self, operation, payload, timeout)

    monkeypatch.setattr(AwsJsonClient, "call", counting)
    monkeypatch.setenv("PUBLIC_BASE_URL_PARAMETER", "/stack/missing-parameter")
    accept(twilio)
    for _ in range(2):
        assert send(load_event("send_message/step_functions.json"), context)["sid"] == MESSAGE_SID
    assert reads == ["/stack/missing-parameter"]
    assert all(name != "StatusCallback" for name, _ in received_forms(twilio)[0])  # sent without a callback


def test_a_slow_secrets_manager_is_given_up_within_the_remaining_time(
    aws: Any, twilio: Any, context: Any, monkeypatch: Any
) -> None:
    """Secrets Manager that does not answer (a loopback endpoint that hangs): the function answers
    in time, with the error, rather than being killed by Lambda's timeout."""
    release = threading.Event()

    def hang(request: Request) -> Response:
        release.wait(5)
        return Response("{}", 200, content_type="application/x-amz-json-1.1")

    twilio.expect_request("/", method="POST").respond_with_handler(hang)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", twilio.url_for("/").rstrip("/"))
    context.remaining_ms = 1500
    answer = send(load_event("send_message/api_gateway.json"), context)
    release.set()
    assert answer["statusCode"] == 500
    assert "could not be read (ReadTimeout)" in json.loads(answer["body"])["error"]["message"]
    wait_for_requests(twilio, 1)
    assert [r.headers["X-Amz-Target"] for r, _ in twilio.log] == ["secretsmanager.GetSecretValue"]


def emf_documents(output: str) -> list[dict[str, Any]]:
    """The CloudWatch embedded-metric documents the function printed."""
    return [doc for doc in map(json.loads, filter(None, output.splitlines())) if "_aws" in doc]


def test_metrics_count_sends_retries_latency_and_failures_by_twilio_code(
    aws: Any, twilio: Any, context: Any, capsys: Any
) -> None:
    twilio.expect_ordered_request(MESSAGES, method="POST").respond_with_json(
        {"code": 20429, "message": "Too Many Requests", "status": 429}, status=429, headers={"Retry-After": "0"}
    )
    twilio.expect_ordered_request(MESSAGES, method="POST").respond_with_json(twilio_message(), status=201)
    twilio.expect_ordered_request(MESSAGES, method="POST").respond_with_json(REJECTED, status=400)
    send(load_event("send_message/api_gateway.json"), context)
    send(load_event("send_message/api_gateway.json"), context)
    documents = emf_documents(capsys.readouterr().out)
    assert all(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "TwilioMessagingTest" for doc in documents)
    sent, failed = [doc for doc in documents if "TwilioLatency" in doc]
    assert sent["MessagesSent"] == [1.0] and sent["TwilioRetries"] == [1.0] and len(sent["TwilioLatency"]) == 2
    assert failed["SendFailures"] == [1.0] and "MessagesSent" not in failed
    by_code = [doc for doc in documents if "SendFailuresByCode" in doc]
    assert [doc["ErrorCode"] for doc in by_code] == ["21211"]


@pytest.fixture
def threaded_twilio(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A Twilio fake that answers requests concurrently (pytest-httpserver's default is one at a time)."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(threaded=True)
    server.start()
    monkeypatch.setenv("TWILIO_API_BASE_URL", server.url_for("/").rstrip("/"))
    yield server
    server.clear()
    server.stop()


def test_a_batch_settles_on_twilios_concurrency_limit_without_a_429_storm(
    aws: Any, threaded_twilio: Any, context: Any, monkeypatch: Any
) -> None:
    """Twilio takes 3 requests at a time and answers 429 beyond; the batch may use 10."""
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://sms.example.com")
    twilio = threaded_twilio
    lock = threading.Lock()
    in_flight = {"now": 0, "most_accepted": 0, "refused": 0}

    def limited(request: Request) -> Response:
        with lock:
            if in_flight["now"] >= 3:
                in_flight["refused"] += 1
                return Response(json.dumps({"code": 20429, "message": "Too Many Requests", "status": 429}), 429)
            in_flight["now"] += 1
            in_flight["most_accepted"] = max(in_flight["most_accepted"], in_flight["now"])
        time.sleep(0.05)
        with lock:
            in_flight["now"] -= 1
        return Response(json.dumps(twilio_message(to=request.form["To"])), 201, content_type="application/json")

    twilio.expect_request(MESSAGES, method="POST").respond_with_handler(limited)
    recipients = [f"+1555867{i:04d}" for i in range(40)]
    answer = send({"to": recipients, "body": "Maintenance tonight at 22:00 UTC."}, context)
    assert answer["failedNumbers"] == ""
    assert len(answer["messages"]) == 40
    assert in_flight["most_accepted"] <= 3
    # The first wave (10 sent, 7 refused) finds the limit; then only an occasional probe of one
    # more is refused. Without pacing, each sender backs off alone: dozens of 429s, failed sends.
    assert in_flight["refused"] <= 12, in_flight
