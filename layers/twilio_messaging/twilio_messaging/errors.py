"""Domain errors, and the one mapping of each to its HTTP answer and Step Functions error type.

The class name of each error is the `errorType` that Step Functions matches in Retry and Catch
(docs/api.md, "Step Functions error types"); `str(error)` is the JSON object that Lambda reports as `errorMessage`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar


class TwilioMessagingError(Exception):
    """Base of every error this product reports to a caller."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        details: list[dict[str, str]] | None = None,
        twilio_code: int | None = None,
        more_info: str | None = None,
        twilio_status: int | None = None,
        retry_after: float | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.twilio_code = twilio_code
        self.more_info = more_info
        self.twilio_status = twilio_status
        self.retry_after = retry_after
        self.timed_out = timed_out

    @property
    def status(self) -> int:
        """HTTP status of the answer: timeouts are 504 whatever the class."""
        return 504 if self.timed_out and self.http_status >= 500 else self.http_status

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        if self.twilio_code is not None:
            body["twilioCode"] = self.twilio_code
        if self.more_info:
            body["moreInfo"] = self.more_info
        if self.twilio_status is not None:
            body["status"] = self.twilio_status
        if self.retry_after is not None:
            body["retryAfter"] = self.retry_after
        return body

    def __str__(self) -> str:
        return json.dumps(self.to_dict())


class ValidationError(TwilioMessagingError):
    code = "VALIDATION_ERROR"
    http_status = 400

    @classmethod
    def from_problems(cls, problems: list[dict[str, str]]) -> ValidationError:
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        return cls(f"{len(problems)} {noun} with the request: {summary}", details=problems)


class MessageNotFound(TwilioMessagingError):
    code = "MESSAGE_NOT_FOUND"
    http_status = 404


class NotFound(TwilioMessagingError):
    code = "NOT_FOUND"
    http_status = 404


class TwilioRequestRejected(TwilioMessagingError):
    code = "TWILIO_REJECTED"
    http_status = 400


class TwilioRateLimited(TwilioMessagingError):
    code = "RATE_LIMITED"
    http_status = 429


class TwilioUnavailable(TwilioMessagingError):
    code = "TWILIO_UNAVAILABLE"
    http_status = 502


class SendOutcomeUnknown(TwilioMessagingError):
    code = "SEND_OUTCOME_UNKNOWN"
    http_status = 502


class ConfigurationError(TwilioMessagingError):
    code = "CONFIGURATION_ERROR"
    http_status = 500


class IdempotencyInProgress(TwilioMessagingError):
    code = "IDEMPOTENCY_IN_PROGRESS"
    http_status = 409


class IdempotencyKeyReused(TwilioMessagingError):
    code = "IDEMPOTENCY_KEY_REUSED"
    http_status = 422


class RecipientSuppressed(TwilioMessagingError):
    """The recipient opted out of this sender (or every sender), or its number does not work:
    no Twilio call was made."""

    code = "RECIPIENT_SUPPRESSED"
    http_status = 422


class InvalidSignature(TwilioMessagingError):
    code = "INVALID_SIGNATURE"
    http_status = 403


class AwsServiceUnavailable(TwilioMessagingError):
    """DynamoDB, EventBridge or Step Functions failed (throttled, 5xx, unreachable): the webhook
    answers 503 so that Twilio delivers it again, and nothing half-done is kept."""

    code = "AWS_SERVICE_UNAVAILABLE"
    http_status = 503


class InternalError(TwilioMessagingError):
    code = "INTERNAL_ERROR"
    http_status = 500


def http_error_answer(error: TwilioMessagingError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and extra headers of the HTTP answer for a domain error (docs/api.md, "Idempotency and retries")."""
    body = error.to_dict()
    body.pop("status", None)  # Twilio's status is in the HTTP status line already
    body.pop("retryAfter", None)
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    return error.status, {"error": body}, headers
