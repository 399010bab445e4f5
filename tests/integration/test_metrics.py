"""The metrics operations rely on (docs/operations.md): TwilioRateLimitRetries, SecretReadFailures,
UnexpectedFailures with the function's name, TwilioConcurrentRequests, as the functions print
them (CloudWatch embedded metric format, one JSON document per line on stdout)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import ACCOUNT_SID, MESSAGE_SID, SECRET_ID, load_event, load_handler, twilio_message
from twilio_messaging import errors
from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.deadline import Deadline

MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
MESSAGE = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{MESSAGE_SID}.json"
TOO_MANY = {"code": 20429, "message": "Too Many Requests", "status": 429}


def emf_documents(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The embedded-metric documents printed since the last read."""
    lines = capsys.readouterr().out.splitlines()
    return [document for document in map(json.loads, filter(None, lines)) if "_aws" in document]


def values(documents: list[dict[str, Any]], metric: str) -> list[float]:
    found: list[float] = []
    for document in documents:
        if metric in document:
            value = document[metric]
            found += value if isinstance(value, list) else [value]
    return found


def definitions(document: dict[str, Any]) -> dict[str, Any]:
    [directive] = document["_aws"]["CloudWatchMetrics"]
    return directive


def send(event: Any, context: Any) -> Any:
    return load_handler("send_message").lambda_handler(event, context)


def get(event: Any, context: Any) -> Any:
    return load_handler("get_message").lambda_handler(event, context)


# --- TwilioRateLimitRetries ---------------------------------------------------------------------


def test_a_429_repeat_counts_as_a_rate_limit_retry_and_a_retry(
    aws: Any, twilio: Any, context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    twilio.expect_ordered_request(MESSAGES, method="POST").respond_with_json(
        TOO_MANY, status=429, headers={"Retry-After": "0"}
    )
    twilio.expect_ordered_request(MESSAGES, method="POST").respond_with_json(twilio_message(), status=201)
    assert send(load_event("send_message/api_gateway.json"), context)["statusCode"] == 201
    documents = emf_documents(capsys)
    assert values(documents, "TwilioRateLimitRetries") == [1.0]
    assert values(documents, "TwilioRetries") == [1.0], "every repeat, 429s included (compatibility)"
    [document] = [d for d in documents if "TwilioRateLimitRetries" in d]
    assert {"Name": "TwilioRateLimitRetries", "Unit": "Count"}.items() <= next(
        m for m in definitions(document)["Metrics"] if m["Name"] == "TwilioRateLimitRetries"
    ).items()


def test_a_5xx_repeat_is_a_retry_but_not_a_rate_limit_retry(
    aws: Any, twilio: Any, context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    twilio.expect_ordered_request(MESSAGE, method="GET").respond_with_json({"message": "oops"}, status=503)
    twilio.expect_ordered_request(MESSAGE, method="GET").respond_with_json(twilio_message())
    assert get(load_event("get_message/api_gateway.json"), context)["statusCode"] == 200
    documents = emf_documents(capsys)
    assert values(documents, "TwilioRetries") == [1.0]
    assert values(documents, "TwilioRateLimitRetries") == []


# --- SecretReadFailures -------------------------------------------------------------------------


def test_a_secret_that_does_not_exist_counts_as_a_read_failure(
    aws: Any, context: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TWILIO_SECRET_ID", "twilio/no-such-secret")
    answer = get(load_event("get_message/api_gateway.json"), context)
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"])["error"]["code"] == "CONFIGURATION_ERROR"
    assert values(emf_documents(capsys), "SecretReadFailures") == [1.0]


def test_a_secret_that_cannot_be_used_counts_as_a_read_failure(
    aws: Any, context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps({"authToken": "x"}))  # no accountSid
    with pytest.raises(errors.ConfigurationError):
        get(load_event("get_message/direct.json"), context)
    assert values(emf_documents(capsys), "SecretReadFailures") == [1.0]


def test_a_secret_read_is_counted_only_when_it_fails(
    aws: Any, twilio: Any, context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    twilio.expect_request(MESSAGE, method="GET").respond_with_json(twilio_message())
    assert get(load_event("get_message/direct.json"), context)["sid"] == MESSAGE_SID
    assert values(emf_documents(capsys), "SecretReadFailures") == []


# --- UnexpectedFailures -------------------------------------------------------------------------


def unexpected_failures(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each UnexpectedFailures document: its dimensions' values and its value."""
    found = []
    for document in documents:
        if "UnexpectedFailures" in document:
            [names] = definitions(document)["Dimensions"]
            found.append(
                {name: document[name] for name in names} | {"value": sum(values([document], "UnexpectedFailures"))}
            )
    return found


def failing(error: Exception) -> Any:
    def operation(invocation: Invocation, deadline: Deadline) -> Answer:
        raise error

    return operation


UNEXPECTED = [
    errors.InternalError("a bug"),
    errors.ConfigurationError("the secret is missing"),
    errors.AwsServiceUnavailable("DynamoDB throttled", retry_after=1),
    RuntimeError("not a domain error: answered as INTERNAL_ERROR"),
]
CALLERS_OR_TWILIOS = [
    errors.ValidationError.from_problems([{"field": "to", "problem": "is required"}]),
    errors.TwilioRequestRejected("invalid To", twilio_code=21211),
    errors.TwilioRateLimited("too many", retry_after=1),
    errors.TwilioUnavailable("Twilio answered 503"),
    errors.SendOutcomeUnknown("timed out", timed_out=True),
    errors.MessageNotFound("no such message"),
    errors.IdempotencyKeyReused("another request"),
    errors.InvalidSignature("no match"),
]
SOURCES = {
    "api": lambda: load_event("get_message/api_gateway.json"),
    "direct": lambda: load_event("get_message/direct.json"),
    "eventbridge": lambda: load_event("send_message/eventbridge.json"),
}


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("error", UNEXPECTED, ids=lambda e: type(e).__name__)
def test_unexpected_failures_are_counted_with_the_functions_name(
    context: Any, capsys: pytest.CaptureFixture[str], error: Exception, source: str
) -> None:
    context.function_name = "stack-SendMessageFunction-AbCdEf123456"
    if source == "api":
        assert handle(SOURCES[source](), context, failing(error), body="none")["statusCode"] >= 500
    else:
        with pytest.raises(errors.TwilioMessagingError):
            handle(SOURCES[source](), context, failing(error), body="none")
    [counted] = unexpected_failures(emf_documents(capsys))
    assert counted == {
        "FunctionName": "stack-SendMessageFunction-AbCdEf123456",
        "service": "twilio-messaging-test",  # POWERTOOLS_SERVICE_NAME (tests/conftest.py)
        "value": 1.0,
    }


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("error", CALLERS_OR_TWILIOS, ids=lambda e: type(e).__name__)
def test_callers_mistakes_and_twilios_answers_are_not_unexpected(
    context: Any, capsys: pytest.CaptureFixture[str], error: Exception, source: str
) -> None:
    if source == "api":
        handle(SOURCES[source](), context, failing(error), body="none")
    else:
        with pytest.raises(type(error)):
            handle(SOURCES[source](), context, failing(error), body="none")
    assert unexpected_failures(emf_documents(capsys)) == []


def test_a_validation_error_of_a_step_functions_task_is_not_unexpected(
    context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Raised to Step Functions, it is a Lambda error (Errors): why send has no Errors alarm."""
    with pytest.raises(errors.ValidationError):
        send({"body": "Hello"}, context)
    assert unexpected_failures(emf_documents(capsys)) == []


def test_a_missing_secret_is_an_unexpected_failure_of_that_function(
    aws: Any, context: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TWILIO_SECRET_ID", "twilio/no-such-secret")
    with pytest.raises(errors.ConfigurationError):
        get(load_event("get_message/direct.json"), context)
    documents = emf_documents(capsys)
    assert unexpected_failures(documents) == [
        {"FunctionName": context.function_name, "service": "twilio-messaging-test", "value": 1.0}
    ]
    assert all(definitions(d)["Namespace"] == "TwilioMessagingTest" for d in documents)


# --- TwilioConcurrentRequests -------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [("7", [7.0]), (None, []), ("many", [])])
def test_twilios_concurrent_requests_header_becomes_a_metric(
    aws: Any, twilio: Any, context: Any, capsys: pytest.CaptureFixture[str], header: str | None, expected: list[float]
) -> None:
    headers = {"Twilio-Concurrent-Requests": header} if header is not None else {}
    twilio.expect_request(MESSAGE, method="GET").respond_with_json(twilio_message(), headers=headers)
    assert get(load_event("get_message/api_gateway.json"), context)["statusCode"] == 200
    documents = emf_documents(capsys)
    assert values(documents, "TwilioConcurrentRequests") == expected
    for document in documents:
        for metric in definitions(document)["Metrics"]:
            if metric["Name"] == "TwilioConcurrentRequests":
                assert metric["Unit"] == "Count"


def test_every_answer_of_a_call_reports_its_concurrency(
    aws: Any, twilio: Any, context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 429 carries the header too: the level at which Twilio refused."""
    twilio.expect_ordered_request(MESSAGES, method="POST").respond_with_json(
        TOO_MANY, status=429, headers={"Retry-After": "0", "Twilio-Concurrent-Requests": "100"}
    )
    twilio.expect_ordered_request(MESSAGES, method="POST").respond_with_json(
        twilio_message(), status=201, headers={"Twilio-Concurrent-Requests": "42"}
    )
    assert send(load_event("send_message/api_gateway.json"), context)["statusCode"] == 201
    assert values(emf_documents(capsys), "TwilioConcurrentRequests") == [100.0, 42.0]
