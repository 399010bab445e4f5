"""One mapping of domain errors: HTTP answers for API Gateway, exceptions for Step Functions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import LambdaContext, load_event
from twilio_messaging import errors
from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.deadline import Deadline

CASES = [
    (errors.ValidationError("bad", details=[{"field": "to", "problem": "x"}]), 400, "VALIDATION_ERROR"),
    (
        errors.TwilioRequestRejected("no", twilio_code=21211, more_info="https://www.twilio.com/docs/errors/21211"),
        400,
        "TWILIO_REJECTED",
    ),
    (errors.InvalidSignature("sig"), 403, "INVALID_SIGNATURE"),
    (errors.MessageNotFound("gone", twilio_code=20404), 404, "MESSAGE_NOT_FOUND"),
    (errors.NotFound("gone"), 404, "NOT_FOUND"),
    (errors.IdempotencyInProgress("busy"), 409, "IDEMPOTENCY_IN_PROGRESS"),
    (errors.IdempotencyKeyReused("other"), 422, "IDEMPOTENCY_KEY_REUSED"),
    (errors.TwilioRateLimited("slow", retry_after=3), 429, "RATE_LIMITED"),
    (errors.ConfigurationError("cfg"), 500, "CONFIGURATION_ERROR"),
    (errors.InternalError("bug"), 500, "INTERNAL_ERROR"),
    (errors.TwilioUnavailable("down"), 502, "TWILIO_UNAVAILABLE"),
    (errors.TwilioUnavailable("slow", timed_out=True), 504, "TWILIO_UNAVAILABLE"),
    (errors.SendOutcomeUnknown("maybe"), 502, "SEND_OUTCOME_UNKNOWN"),
    (errors.SendOutcomeUnknown("maybe", timed_out=True), 504, "SEND_OUTCOME_UNKNOWN"),
]


def failing(error: Exception) -> Any:
    def operation(invocation: Invocation, deadline: Deadline) -> Answer:
        raise error

    return operation


@pytest.mark.parametrize(("error", "status", "code"), CASES)
def test_api_gateway_answer(error: errors.TwilioMessagingError, status: int, code: str) -> None:
    answer = handle(load_event("get_message/api_gateway.json"), LambdaContext(), failing(error), body="none")
    assert answer["statusCode"] == status
    body = json.loads(answer["body"])["error"]
    assert body["code"] == code and body["message"] == error.message
    if error.twilio_code:
        assert body["twilioCode"] == error.twilio_code
    if error.more_info:
        assert body["moreInfo"] == error.more_info


def test_rate_limited_answer_carries_retry_after() -> None:
    answer = handle(
        load_event("get_message/api_gateway.json"),
        LambdaContext(),
        failing(errors.TwilioRateLimited("x", retry_after=2.4)),
        body="none",
    )
    assert answer["headers"]["Retry-After"] == "2"


@pytest.mark.parametrize(("error", "status", "code"), CASES)
@pytest.mark.parametrize("event_file", ["get_message/direct.json", "send_message/eventbridge.json"])
def test_direct_and_eventbridge_raise_the_step_functions_error_type(
    error: errors.TwilioMessagingError, status: int, code: str, event_file: str
) -> None:
    with pytest.raises(errors.TwilioMessagingError) as caught:
        handle(load_event(event_file), LambdaContext(), failing(error), body="none")
    # Lambda reports the class name as errorType and str() as errorMessage.
    assert type(caught.value).__name__ == type(error).__name__
    assert json.loads(str(caught.value))["code"] == code


def test_twilio_rejection_message_carries_twilio_details() -> None:
    error = errors.TwilioRequestRejected(
        "bad To", twilio_code=21211, more_info="https://x.twilio.com/21211", twilio_status=400
    )
    assert json.loads(str(error)) == {
        "code": "TWILIO_REJECTED",
        "message": "bad To",
        "twilioCode": 21211,
        "moreInfo": "https://x.twilio.com/21211",
        "status": 400,
    }


def test_unexpected_exception_is_an_internal_error_without_its_text() -> None:
    answer = handle(
        load_event("get_message/api_gateway.json"), LambdaContext(), failing(RuntimeError("secret detail")), body="none"
    )
    assert answer["statusCode"] == 500
    assert "secret detail" not in answer["body"]
    with pytest.raises(errors.InternalError):
        handle(
            load_event("get_message/direct.json"), LambdaContext(), failing(RuntimeError("secret detail")), body="none"
        )
