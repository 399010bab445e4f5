"""Sending, fetching and deleting messages: the domain operations behind send_message and
get_message. Knows Twilio's API through TwilioClient, and nothing of how it was invoked."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import (
    AwsServiceUnavailable,
    ConfigurationError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InternalError,
    MessageNotFound,
    SendOutcomeUnknown,
    TwilioMessagingError,
    TwilioUnavailable,
    ValidationError,
)
from twilio_messaging.message_model import normalize_message
from twilio_messaging.observability import count, count_failure, logger
from twilio_messaging.send_pacer import SendPacer
from twilio_messaging.send_request import SendRequest
from twilio_messaging.twilio_client import DEFAULT_RETRY, RetryPolicy, TwilioClient
from twilio_messaging.validation import MESSAGE_SID

if TYPE_CHECKING:
    from twilio_messaging.idempotent_send import IdempotentSends
    from twilio_messaging.state_table import StateTable

DEFAULT_CONCURRENCY = 10  # SEND_CONCURRENCY
# A paced batch may wait out more 429s: the pacer keeps them from piling up, and every wait
# still fits in the remaining time.
PACED_RETRY = RetryPolicy(max_rate_limit_retries=8)
# Looking for a message after an unknown outcome: Twilio's dates have one-second resolution and
# its clock is not ours, so a message created this long before the attempt still counts.
CLOCK_SKEW_SECONDS = 10
LOOKUP_MIN_SECONDS = 2.0  # time a lookup needs; with less left, the outcome stays unknown
# Kept back from a send's POST for what must follow it: the idempotency record, the note of the
# attempt cleared, the task token stored.
BOOKKEEPING_RESERVE_SECONDS = 1.0
# Errors that concern the whole request, not one recipient: a batch fails with them as a whole.
WHOLE_REQUEST_ERRORS = (IdempotencyInProgress, IdempotencyKeyReused, AwsServiceUnavailable, ConfigurationError)


@dataclass(frozen=True)
class Idempotency:
    """A send's idempotency key, with what enforces it."""

    key: str
    fingerprint: str
    sends: IdempotentSends
    table: StateTable


def send_one(
    client: TwilioClient,
    request: SendRequest,
    recipient: str,
    status_callback: str | None,
    deadline: Deadline,
    pacer: SendPacer | None = None,
) -> dict[str, Any]:
    resource = client.request_json(
        "POST",
        client.account_url("/Messages.json", deadline),
        data=request.twilio_form(recipient, status_callback),
        deadline=deadline,
        idempotent=False,
        pacer=pacer,
        retry=PACED_RETRY if pacer else DEFAULT_RETRY,
    )
    if not MESSAGE_SID.match(str(resource.get("sid") or "")):
        # A 2xx without a message: Twilio most likely took the send, so never send it again blindly.
        raise SendOutcomeUnknown("Twilio answered the send with a body that is not a message")
    message = normalize_message(resource)
    count("MessagesSent")
    logger.info("Message sent", extra={"sid": message["sid"], "to": recipient, "status": message["status"]})
    return message


def record_failure(error: TwilioMessagingError) -> None:
    """Failures by code: Twilio's error code when it gave one (21211, 21610, …), else ours."""
    count_failure(str(error.twilio_code) if error.twilio_code else error.code)


def _created_at(message: dict[str, Any]) -> float | None:
    try:
        return datetime.fromisoformat(str(message["dateCreated"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError, OverflowError):
        return None


def _is_that_message(message: dict[str, Any], request: SendRequest, recipient: str, since: float) -> bool:
    created = _created_at(message)
    if message.get("to") != recipient or created is None or created < since - CLOCK_SKEW_SECONDS:
        return False
    if not str(message.get("direction") or "").startswith("outbound"):
        return False
    if request.sender and message.get("from") != request.sender:
        return False
    if request.messaging_service_sid and message.get("messagingServiceSid") != request.messaging_service_sid:
        return False
    if request.body:
        return request.body in str(message.get("body") or "")  # trial accounts prefix the body
    return bool(request.media_urls) and message.get("numMedia") == len(request.media_urls)


def find_sent_message(
    client: TwilioClient, request: SendRequest, recipient: str, since: float, deadline: Deadline
) -> dict[str, Any] | None:
    """The message a send whose outcome was unknown did create, when Twilio lists it: same
    recipient, sender and body, created since the attempt began."""
    resource = client.request_json(
        "GET",
        client.account_url("/Messages.json", deadline),
        params=[("To", recipient), ("PageSize", "20")],
        deadline=deadline,
    )
    for item in resource.get("messages") or []:
        if isinstance(item, dict) and _is_that_message(message := normalize_message(item), request, recipient, since):
            return message
    return None


def send_or_find(
    client: TwilioClient,
    request: SendRequest,
    recipient: str,
    status_callback: str | None,
    deadline: Deadline,
    pacer: SendPacer | None = None,
) -> dict[str, Any]:
    """send_one; when its outcome is unknown, Twilio's list of messages tells whether it went out."""
    started = time.time()
    try:
        return send_one(client, request, recipient, status_callback, deadline, pacer)
    except SendOutcomeUnknown as error:
        if deadline.remaining() < LOOKUP_MIN_SECONDS:
            error.details.append({"field": "(outcome)", "problem": "no time left to look the message up on Twilio"})
            raise
        try:
            found = find_sent_message(client, request, recipient, started, deadline)
        except TwilioMessagingError:
            found = None
        if found is None:
            error.details.append({"field": "(outcome)", "problem": "Twilio lists no such message yet"})
            raise
        logger.warning("Send failed in transit but Twilio has the message", extra={"sid": found["sid"]})
        count("MessagesSent")
        return found


def deliver(
    client: TwilioClient,
    request: SendRequest,
    recipient: str,
    status_callback: str | None,
    deadline: Deadline,
    idempotency: Idempotency | None,
    pacer: SendPacer | None = None,
) -> dict[str, Any]:
    """One recipient's message, sent at most once per idempotency key. When records are written
    after the POST (idempotency, the task token), the POST keeps a reserve of time for them."""
    bookkeeping = idempotency is not None or request.task_token is not None
    post_deadline = deadline.less(BOOKKEEPING_RESERVE_SECONDS) if bookkeeping else deadline
    if idempotency is None:
        return send_or_find(client, request, recipient, status_callback, post_deadline, pacer)
    from twilio_messaging.idempotent_send import marker_for

    marker = marker_for(idempotency.key, recipient)
    table = idempotency.table

    def attempt() -> dict[str, Any]:
        earlier = table.note_send_attempt(marker, time.time(), deadline)  # before the POST
        if earlier is not None:  # an earlier attempt with this key may have sent it
            found = find_sent_message(client, request, recipient, earlier, post_deadline)
            if found is not None:
                logger.info("An earlier attempt with this key did send the message", extra={"sid": found["sid"]})
                _clear_attempt(table, marker, deadline)
                return found
        try:
            message = send_or_find(client, request, recipient, status_callback, post_deadline, pacer)
        except SendOutcomeUnknown:
            raise  # the note stays: a retry with this key looks for the message first
        except TwilioMessagingError:
            _clear_attempt(table, marker, deadline)  # Twilio's answer says it did not take the send
            raise
        _clear_attempt(table, marker, deadline)
        return message

    return idempotency.sends.send(idempotency.key, recipient, idempotency.fingerprint, attempt, deadline)


def _clear_attempt(table: StateTable, marker: str, deadline: Deadline) -> None:
    """A note left behind only costs a retry one look at Twilio's list: never worth failing for."""
    try:
        table.clear_send_attempt(marker, deadline)
    except TwilioMessagingError:
        logger.warning("Could not clear the note of a send attempt")


def send_message(
    client: TwilioClient,
    request: SendRequest,
    deadline: Deadline,
    default_status_callback: str | None,
    idempotency: Idempotency | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> dict[str, Any]:
    """Send to one recipient (the Message) or several (messages, failed, failedNumbers), at most
    `concurrency` at a time and fewer while Twilio answers 429 (SendPacer)."""
    if not request.batch:
        try:
            return deliver(client, request, request.recipients[0], default_status_callback, deadline, idempotency)
        except TwilioMessagingError as error:
            record_failure(error)
            raise

    workers = min(concurrency, len(request.recipients))
    pacer = SendPacer(workers)

    def attempt(recipient: str) -> tuple[str, dict[str, Any] | TwilioMessagingError]:
        try:
            return recipient, deliver(client, request, recipient, default_status_callback, deadline, idempotency, pacer)
        except TwilioMessagingError as error:
            record_failure(error)
            return recipient, error
        except Exception:  # one recipient's bug must not lose the others' answers
            logger.exception("Unexpected error sending to one recipient", extra={"to": recipient})
            record_failure(InternalError("unexpected"))
            return recipient, InternalError("unexpected error while sending")

    client.credentials.get(deadline)  # a configuration error fails the whole batch once, not each recipient
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="send") as pool:
        outcomes = list(pool.map(attempt, request.recipients))
    for _, outcome in outcomes:
        if isinstance(outcome, WHOLE_REQUEST_ERRORS):
            raise outcome  # recipients already sent are recorded: a retry with the key skips them
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
    if not MESSAGE_SID.match(str(resource.get("sid") or "")):
        raise TwilioUnavailable("Twilio answered with a body that is not a message")
    return normalize_message(resource)


def delete_message(client: TwilioClient, sid: str, deadline: Deadline) -> None:
    client.request(
        "DELETE",
        client.account_url(f"/Messages/{check_message_sid(sid)}.json", deadline),
        deadline=deadline,
        not_found=MessageNotFound,
    )
    logger.info("Message deleted", extra={"sid": sid})
