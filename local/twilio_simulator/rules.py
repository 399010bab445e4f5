"""From what the OpenAPI check found to Twilio's error answer, and the rules of Create Message that
Twilio's description cannot express (which of To, From, MessagingServiceSid, Body, MediaUrl are
needed together, ranges, URLs, scheduling, senders the account owns, the test numbers).

An invalid request gets one Twilio error: the first problem decides the code (a missing parameter
first); every problem is listed in the answer's `details` and in the simulator's record."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from local.twilio_simulator import errors
from local.twilio_simulator.config import SimulatorConfig
from local.twilio_simulator.errors import TwilioError, bad_request
from local.twilio_simulator.outcomes import bare_number, recipient_outcome, sender_outcome
from local.twilio_simulator.spec_validation import Problem

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
CHANNEL_ADDRESS = re.compile(r"^(whatsapp|messenger|rcs|fbm|line|wechat|kakao|viber):\S+$")
SHORT_CODE = re.compile(r"^[0-9]{3,8}$")
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
MAX_BODY = 1600
MAX_MEDIA = 10
VALIDITY_RANGE = range(1, 36001)
SCHEDULE_MIN = timedelta(seconds=300)
SCHEDULE_MAX = timedelta(days=35)

# A problem with one of these Create Message fields has Twilio's own code; any other is 20001.
FIELD_CODES = {
    "To": errors.INVALID_TO,
    "From": errors.INVALID_FROM,
    "StatusCallback": errors.INVALID_STATUS_CALLBACK,
    "ValidityPeriod": errors.INVALID_VALIDITY_PERIOD,
    "MediaUrl": errors.INVALID_MEDIA_URL,
    "SendAt": errors.INVALID_SEND_AT,
}


def error_for(problems: list[Problem], operation_id: str, path: str) -> TwilioError:
    """The answer to a request the description rejects."""
    ordered = sorted(problems, key=lambda p: p.kind != "required")
    first = ordered[0]
    details = {"problems": [p.as_json() for p in problems]}
    if first.location == "path":
        # Twilio answers a malformed sid as an unknown resource.
        error = errors.not_found(path)
        error.details = details
        return error
    if first.kind == "required" and first.name == "To" and operation_id == "CreateMessage":
        return bad_request(errors.TO_REQUIRED, "A 'To' phone number is required.", **details)
    code = FIELD_CODES.get(first.name, errors.BAD_REQUEST) if operation_id == "CreateMessage" else errors.BAD_REQUEST
    if first.kind == "unknown":
        code = errors.BAD_REQUEST
    return bad_request(code, f"Invalid parameter: {first}", **details)


@dataclass
class CreateRequest:
    """A Create Message that passed every rule: what the simulator needs from it."""

    to: str
    sender: str | None
    service_sid: str | None
    body: str
    media_urls: list[str]
    status_callback: str | None
    validity_period: int | None
    send_at: datetime | None
    form: dict[str, Any] = field(default_factory=dict)


def create_request(form: dict[str, Any], config: SimulatorConfig, now: datetime) -> CreateRequest:
    """Twilio's rules for Create Message, in the order Twilio reports them; the first broken
    one is the answer."""
    to = str(form.get("To", ""))
    sender = form.get("From") or None
    service = form.get("MessagingServiceSid") or None
    if sender and SERVICE_SID.match(sender):  # Twilio takes a Messaging Service sid as the From
        sender, service = None, service or sender
    _check_to(to)
    if not sender and not service:
        raise bad_request(errors.FROM_REQUIRED, "A 'From' phone number is required.")
    if sender:
        _check_sender(sender, config)
    media = list(form.get("MediaUrl") or [])
    body = str(form.get("Body") or "")
    _check_content(body, media, bool(form.get("ContentSid")))
    callback = form.get("StatusCallback") or None
    if callback is not None:
        _check_callback(callback)
    validity = form.get("ValidityPeriod")
    if validity is not None and validity not in VALIDITY_RANGE:
        raise bad_request(errors.INVALID_VALIDITY_PERIOD, "Invalid validity period value: 1 to 36000 seconds.")
    send_at = _schedule(form, service, now)
    outcome = recipient_outcome(to)
    if outcome.kind == "rejected" and outcome.code is not None:
        raise errors.rejected(outcome.code, _rejection_message(outcome.code, to, sender or service or ""))
    return CreateRequest(to, sender, service, body, media, callback, validity, send_at, form)


def _check_to(to: str) -> None:
    if not (E164.match(to) or CHANNEL_ADDRESS.match(to)):
        raise bad_request(errors.INVALID_TO, f"The 'To' number {to} is not a valid phone number.")


def _check_sender(sender: str, config: SimulatorConfig) -> None:
    outcome = sender_outcome(sender)
    if outcome is not None and outcome.code is not None:
        raise errors.rejected(outcome.code, _rejection_message(outcome.code, "", sender))
    number = bare_number(sender)
    if not (E164.match(number) or SHORT_CODE.match(number) or ALPHANUMERIC_SENDER.match(number)):
        raise bad_request(errors.INVALID_FROM, _rejection_message(errors.INVALID_FROM, "", sender))
    owned = {n.phone_number for n in config.incoming_phone_numbers}
    if config.check_senders and E164.match(number) and number not in owned:
        raise bad_request(errors.FROM_NOT_OWNED, _rejection_message(errors.FROM_NOT_OWNED, "", sender))


def _check_content(body: str, media: list[str], has_content: bool) -> None:
    if not body and not media and not has_content:
        raise bad_request(errors.BODY_REQUIRED, "Message body is required.")
    if len(body) > MAX_BODY:
        raise bad_request(
            errors.BODY_TOO_LONG, f"The concatenated message body exceeds the {MAX_BODY} character limit."
        )
    if len(media) > MAX_MEDIA:
        raise bad_request(errors.TOO_MANY_MEDIA, f"You have exceeded the maximum of {MAX_MEDIA} media URLs.")
    bad = [url for url in media if not _is_http_url(url)]
    if bad:
        raise bad_request(errors.INVALID_MEDIA_URL, f"Media urls: {', '.join(bad)} are invalid.")


def _check_callback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if not _is_http_url(url) or "_" in host or len(url) > 4000:
        raise bad_request(errors.INVALID_STATUS_CALLBACK, f"The StatusCallback URL {url} is not a valid URL.")


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _schedule(form: dict[str, Any], service: str | None, now: datetime) -> datetime | None:
    if form.get("ScheduleType") != "fixed":
        return None  # without ScheduleType=fixed, Twilio sends at once
    raw = form.get("SendAt")
    if not raw:
        raise bad_request(errors.SEND_AT_MISSING, "SendAt timestamp is missing.")
    if not service:
        raise bad_request(errors.SCHEDULING_NEEDS_SERVICE, "MessagingServiceSid is required to schedule a message.")
    send_at = parse_date_time(str(raw))
    if send_at is None or not SCHEDULE_MIN <= send_at - now <= SCHEDULE_MAX:
        raise bad_request(
            errors.INVALID_SEND_AT, "SendAt time must be between 300 seconds and 35 days in the future, inclusive."
        )
    return send_at


def parse_date_time(value: str) -> datetime | None:
    """An RFC 3339 date-time (the description's `date-time`) in UTC; None when it is not one."""
    try:
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _rejection_message(code: int, to: str, sender: str) -> str:
    messages = {
        errors.INVALID_TO: f"The 'To' number {to} is not a valid phone number.",
        errors.CANNOT_ROUTE: f"The 'To' phone number: {to}, is not currently reachable using the 'From' "
        f"phone number: {sender} via SMS.",
        errors.INTERNATIONAL_NOT_ENABLED: "Permission to send an SMS has not been enabled for the region "
        f"indicated by the 'To' number: {to}.",
        errors.OPTED_OUT: "Attempt to send to unsubscribed recipient",
        errors.NOT_SMS_CAPABLE: f"'To' number {to} is not a valid mobile number",
        errors.INVALID_FROM: f"The 'From' number {sender} is not a valid phone number, shortcode, "
        "or alphanumeric sender ID.",
        errors.FROM_NOT_OWNED: f"The 'From' phone number provided ({sender}) is not a valid message-capable "
        "Twilio phone number for this destination/account.",
        errors.QUEUE_FULL: "This 'From' number has exceeded the maximum number of queued messages",
    }
    return messages.get(code, "The request was rejected.")
