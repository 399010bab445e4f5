"""Sending, fetching and deleting messages: the domain operations behind send_message and
get_message. Knows Twilio's API through TwilioClient, and nothing of how it was invoked."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import InternalError, MessageNotFound, TwilioMessagingError, ValidationError
from twilio_messaging.message_model import normalize_message
from twilio_messaging.observability import count, count_failure, logger
from twilio_messaging.send_request import SendRequest
from twilio_messaging.twilio_client import TwilioClient
from twilio_messaging.validation import MESSAGE_SID

MAX_CONCURRENT_SENDS = 10


def send_one(
    client: TwilioClient, request: SendRequest, recipient: str, status_callback: str | None, deadline: Deadline
) -> dict[str, Any]:
    resource = client.request_json(
        "POST",
        client.account_url("/Messages.json", deadline),
        data=request.twilio_form(recipient, status_callback),
        deadline=deadline,
        idempotent=False,
    )
    message = normalize_message(resource)
    count("MessagesSent")
    logger.info("Message sent", extra={"sid": message["sid"], "to": recipient, "status": message["status"]})
    return message


def record_failure(error: TwilioMessagingError) -> None:
    """Failures by code: Twilio's error code when it gave one (21211, 21610, …), else ours."""
    count_failure(str(error.twilio_code) if error.twilio_code else error.code)


def send_message(
    client: TwilioClient, request: SendRequest, deadline: Deadline, default_status_callback: str | None
) -> dict[str, Any]:
    """Send to one recipient (the Message) or several (messages, failed, failedNumbers)."""
    if not request.batch:
        try:
            return send_one(client, request, request.recipients[0], default_status_callback, deadline)
        except TwilioMessagingError as error:
            record_failure(error)
            raise

    def attempt(recipient: str) -> tuple[str, dict[str, Any] | TwilioMessagingError]:
        try:
            return recipient, send_one(client, request, recipient, default_status_callback, deadline)
        except TwilioMessagingError as error:
            record_failure(error)
            return recipient, error
        except Exception:  # one recipient's bug must not lose the others' answers
            logger.exception("Unexpected error sending to one recipient", extra={"to": recipient})
            record_failure(InternalError("unexpected"))
            return recipient, InternalError("unexpected error while sending")

    client.credentials.get(deadline)  # a configuration error fails the whole batch once, not each recipient
    workers = min(MAX_CONCURRENT_SENDS, len(request.recipients))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="send") as pool:
        outcomes = list(pool.map(attempt, request.recipients))
    messages = [outcome for _, outcome in outcomes if isinstance(outcome, dict)]
    failed = [(recipient, outcome) for recipient, outcome in outcomes if isinstance(outcome, TwilioMessagingError)]
    return {
        "messages": messages,
        "failed": [{"to": recipient, "error": error.to_dict()} for recipient, error in failed],
        "failedNumbers": ",".join(recipient for recipient, _ in failed),
    }


def check_message_sid(sid: Any) -> str:
    if not isinstance(sid, str) or not MESSAGE_SID.match(sid):
        raise ValidationError.from_problems([{"field": "sid", "problem": "must match ^(SM|MM)[0-9a-f]{32}$"}])
    return sid


def get_message(client: TwilioClient, sid: str, deadline: Deadline) -> dict[str, Any]:
    resource = client.request_json(
        "GET",
        client.account_url(f"/Messages/{check_message_sid(sid)}.json", deadline),
        deadline=deadline,
        not_found=MessageNotFound,
    )
    return normalize_message(resource)


def delete_message(client: TwilioClient, sid: str, deadline: Deadline) -> None:
    client.request(
        "DELETE",
        client.account_url(f"/Messages/{check_message_sid(sid)}.json", deadline),
        deadline=deadline,
        not_found=MessageNotFound,
    )
    logger.info("Message deleted", extra={"sid": sid})
