"""Twilio's error answers, in the classic shape of the 2010 API:
`{"code", "message", "more_info", "status"}` (docs/twilio.md, "Errors"), and the codes used.

Each code is Twilio's own, from its error pages (https://www.twilio.com/docs/errors/<code>);
docs/local-twilio.md says which request gets which."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"

# Request errors (HTTP 400 unless noted)
BAD_REQUEST = 20001  # Twilio's generic one: seen as {"code": 20001, "message": "Bad request"}
AUTHENTICATE = 20003  # 401
METHOD_NOT_ALLOWED = 20004  # 405
CANNOT_DELETE_YET = 20009  # a message not in a final status yet
NOT_FOUND = 20404  # 404
TOO_MANY_REQUESTS = 20429  # 429: the account's concurrency limit
INTERNAL_ERROR = 20500  # 500
INVALID_TO = 21211
INVALID_FROM = 21212
INTERNATIONAL_NOT_ENABLED = 21408
BODY_REQUIRED = 21602  # no Body, MediaUrl or ContentSid
FROM_REQUIRED = 21603  # neither From nor MessagingServiceSid
TO_REQUIRED = 21604
FROM_NOT_OWNED = 21606
INVALID_STATUS_CALLBACK = 21609
OPTED_OUT = 21610
QUEUE_FULL = 21611
CANNOT_ROUTE = 21612
NOT_SMS_CAPABLE = 21614
BODY_TOO_LONG = 21617
INVALID_MEDIA_URL = 21620
TOO_MANY_MEDIA = 21623
INVALID_VALIDITY_PERIOD = 21624
CANNOT_CANCEL = 30409  # only a scheduled message can be canceled
SEND_AT_MISSING = 35111
INVALID_SEND_AT = 35114  # outside 5 minutes to 35 days ahead, or not a date-time
SCHEDULING_NEEDS_SERVICE = 35118

# Delivery errors, in a status callback's ErrorCode and the message's error_code
QUEUE_OVERFLOW = 30001
UNREACHABLE = 30003
UNKNOWN_DESTINATION = 30005
LANDLINE = 30006
UNKNOWN_ERROR = 30008
VALIDITY_EXPIRED = 30036

DELIVERY_ERROR_MESSAGES = {
    QUEUE_OVERFLOW: "Queue overflow",
    UNREACHABLE: "Unreachable destination handset",
    UNKNOWN_DESTINATION: "Unknown destination handset",
    LANDLINE: "Landline or unreachable carrier",
    UNKNOWN_ERROR: "Unknown error",
    VALIDITY_EXPIRED: "Message Delivery - Validity Period Expired",
}


@dataclass
class TwilioError(Exception):
    """An error answer; raised anywhere in a request's handling, answered by the server."""

    status: int
    code: int
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    # False for what Twilio answers a well-formed request (a test number's outcome, a full queue):
    # only the others are recorded as invalid requests.
    invalid: bool = True

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.status,
        }
        if self.details:
            body["details"] = self.details
        return body


def bad_request(code: int, message: str, **details: Any) -> TwilioError:
    return TwilioError(400, code, message, details)


def rejected(code: int, message: str) -> TwilioError:
    """Twilio's answer to a well-formed request it refuses (a test number, a full queue, a
    message not in the status the operation needs)."""
    return TwilioError(400, code, message, invalid=False)


def authenticate() -> TwilioError:
    return TwilioError(401, AUTHENTICATE, "Authenticate", invalid=False)


def not_found(path: str, *, invalid: bool = True) -> TwilioError:
    """invalid: the path is outside Twilio's description (else: a resource that is not there)."""
    return TwilioError(404, NOT_FOUND, f"The requested resource {path} was not found", invalid=invalid)


def method_not_allowed(method: str, path: str) -> TwilioError:
    return TwilioError(405, METHOD_NOT_ALLOWED, f"Method {method} not allowed on {path}")


def too_many_requests() -> TwilioError:
    return TwilioError(429, TOO_MANY_REQUESTS, "Too Many Requests", invalid=False)


def internal_error() -> TwilioError:
    return TwilioError(500, INTERNAL_ERROR, "An internal server error has occurred", invalid=False)
