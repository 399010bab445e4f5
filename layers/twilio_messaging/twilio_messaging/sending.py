"""Sending messages: the operation behind send_message, whatever invoked it. One entry point,
`send`; the steps, from the outside in (docs/architecture.md, "The send path"):

- `send`: the default status callback, idempotency and the task token around the recipients.
- `send_to_all`: several recipients at once, paced as Twilio's 429s allow.
- `send_at_most_once`: one recipient under an idempotency key. The attempt is noted in the state
  table before the POST and cleared after Twilio's definite answer, so that a retry with the key
  after an unknown outcome looks for the message on Twilio before sending it again.
  `send_claimed_once` is the same promise for a campaign's recipients, in one item each.
- `post_then_look_up`: one POST; when its outcome is unknown, Twilio's list of messages tells
  whether it went out.
- `post_message`: the POST itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import (
    AwsServiceUnavailable,
    ConfigurationError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InternalError,
    SendOutcomeUnknown,
    TwilioMessagingError,
    TwilioRequestRejected,
    TwilioUnavailable,
)
from twilio_messaging.message_model import normalize_message
from twilio_messaging.observability import count, count_failure, logger
from twilio_messaging.opt_outs import OPTED_OUT_CODE, after_rejection, suppressed_error, suppressed_recipients
from twilio_messaging.send_pacer import SendPacer
from twilio_messaging.send_request import SendRequest
from twilio_messaging.twilio_client import DEFAULT_RETRY, NO_TIME_LEFT, Pacer, RetryPolicy, TwilioClient
from twilio_messaging.validation import MESSAGE_SID
from twilio_messaging.values import parse_datetime

if TYPE_CHECKING:
    from twilio_messaging.delivery_records import DeliveryRecords
    from twilio_messaging.idempotency_store import IdempotencyStore
    from twilio_messaging.send_claims import SendClaims
    from twilio_messaging.state_table import StateTable
    from twilio_messaging.step_functions import StepFunctions
    from twilio_messaging.suppressions import Suppression, Suppressions

# A paced batch may wait out more 429s: the pacer keeps them from piling up, and every wait
# still fits in the remaining time.
PACED_RETRY = RetryPolicy(max_rate_limit_retries=8)
# Looking for a message after an unknown outcome: Twilio's dates have one-second resolution and
# its clock is not ours, so a message created this long before the attempt still counts.
CLOCK_SKEW_SECONDS = 10
LOOKUP_MIN_SECONDS = 2.0  # time a lookup needs; with less left, the outcome stays unknown
# Kept back from a send's POST for what must follow it: the idempotency record (or the claim)
# completed, the note of the attempt cleared, the task token stored.
BOOKKEEPING_RESERVE_SECONDS = 1.0
# Errors that concern the whole request, not one recipient: a batch fails with them as a whole.
WHOLE_REQUEST_ERRORS = (IdempotencyInProgress, IdempotencyKeyReused, AwsServiceUnavailable, ConfigurationError)


class SendClients(Protocol):
    """What a send may need, each built on first use (execution_environment provides them)."""

    def twilio_client(self) -> TwilioClient: ...

    def state_table(self) -> StateTable: ...

    def idempotency_store(self) -> IdempotencyStore: ...

    def step_functions(self) -> StepFunctions: ...

    def delivery_records(self) -> DeliveryRecords: ...

    def suppressions(self) -> Suppressions: ...


@dataclass(frozen=True)
class Idempotency:
    """A send's idempotency key, with what enforces it."""

    key: str
    fingerprint: str
    store: IdempotencyStore
    table: StateTable


@dataclass(frozen=True)
class Delivery:
    """What every recipient's send shares."""

    client: TwilioClient
    request: SendRequest
    status_callback: str | None
    idempotency: Idempotency | None
    deadline: Deadline
    records: DeliveryRecords
    suppressions: Suppressions
    reconcile_after: float | None  # the message reports to this deployment: reconciled after this long
    campaign: str | None = None  # the campaign the message belongs to (its delivery record says so)
    claims: SendClaims | None = None  # instead of `idempotency`: a campaign's claims, one per recipient


def send(
    request: SendRequest,
    *,
    payload: dict[str, Any],
    idempotency_key: str | None,
    webhook_url: Callable[[], str | None],
    clients: SendClients,
    concurrency: int,
    reconcile_after: float,
    deadline: Deadline,
    pacer: SendPacer | None = None,
) -> dict[str, Any]:
    """The Message (one recipient) or the batch answer (messages, failed, failedNumbers).
    `payload` is the request as received: its fingerprint tells a repeat from another request
    under the same key. `webhook_url()`: this deployment's webhook URL, the default status
    callback (asked only when the request names none). Suppressed recipients are not sent to.
    `pacer`: one shared with other requests' sends (the send queue's batch), used instead of a
    new one, for one recipient as for several."""
    own_callback = request.status_callback or request.status_callback_disabled
    callback = None if own_callback else webhook_url()
    if request.task_token and not callback:
        # Checked before sending: a task whose message can never report back would only time out.
        raise ConfigurationError("taskToken needs the webhook URL: set PUBLIC_BASE_URL or deploy with the template")
    bookkeeping = idempotency_key is not None or request.task_token is not None
    if bookkeeping and deadline.remaining() <= BOOKKEEPING_RESERVE_SECONDS:
        raise TwilioUnavailable(NO_TIME_LEFT, timed_out=True)  # nothing sent: safe to repeat
    idempotency = _idempotency(idempotency_key, payload, clients) if idempotency_key else None
    table = clients.state_table() if request.task_token else None  # before sending: fails on a missing table
    suppressions = clients.suppressions()
    scopes = {scope for scope in (request.sender, request.messaging_service_sid) if scope}
    suppressed = suppressed_recipients(suppressions, request.recipients, scopes, deadline)
    if suppressed and not request.batch:
        raise suppressed_error(request.recipients[0], suppressed[request.recipients[0]])
    delivery = Delivery(
        clients.twilio_client(),
        request,
        callback,
        idempotency,
        deadline,
        clients.delivery_records(),
        suppressions,
        reconcile_after if callback else None,  # only this deployment hears its callbacks
    )
    result = send_to_all(delivery, concurrency, suppressed, pacer) if request.batch else _send_to_one(delivery, pacer)
    if request.task_token and table is not None:
        from twilio_messaging.task_completion import register_task

        # Also on an idempotent repeat: a retried task has a new token, and it must complete too.
        register_task(table, clients.step_functions(), result["sid"], request.task_token, deadline)
    return result


def _idempotency(key: str, payload: dict[str, Any], clients: SendClients) -> Idempotency:
    from twilio_messaging.idempotency_store import request_fingerprint

    return Idempotency(key, request_fingerprint(payload), clients.idempotency_store(), clients.state_table())


def _send_to_one(delivery: Delivery, pacer: SendPacer | None = None) -> dict[str, Any]:
    try:
        return send_to_recipient(delivery, delivery.request.recipients[0], pacer)
    except TwilioMessagingError as error:
        record_failure(error)
        raise


def send_to_all(
    delivery: Delivery, concurrency: int, suppressed: dict[str, Suppression], pacer: SendPacer | None = None
) -> dict[str, Any]:
    """Every recipient not suppressed, at most `concurrency` at a time and fewer while Twilio
    answers 429 (or the shared `pacer` allows); the suppressed ones are among the failed, with no
    Twilio call."""
    recipients = delivery.request.recipients
    workers = max(1, min(concurrency, len(recipients) - len(suppressed)))
    pacer = pacer if pacer is not None else SendPacer(workers)

    def outcome(recipient: str) -> dict[str, Any] | TwilioMessagingError:
        if recipient in suppressed:
            return suppressed_error(recipient, suppressed[recipient])
        try:
            return send_to_recipient(delivery, recipient, pacer)
        except TwilioMessagingError as error:
            record_failure(error)
            return error
        except Exception:  # one recipient's bug must not lose the others' answers
            logger.exception("Unexpected error sending to one recipient", extra={"to": recipient})
            record_failure(InternalError("unexpected"))
            return InternalError("unexpected error while sending")

    delivery.client.credentials.get(delivery.deadline)  # a configuration error fails the batch once
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="send") as pool:
        outcomes = list(zip(recipients, pool.map(outcome, recipients), strict=True))
    for _, result in outcomes:
        if isinstance(result, WHOLE_REQUEST_ERRORS):
            raise result  # recipients already sent are recorded: a retry with the key skips them
    failed = [(recipient, error) for recipient, error in outcomes if isinstance(error, TwilioMessagingError)]
    return {
        "messages": [result for _, result in outcomes if isinstance(result, dict)],
        "failed": [{"to": recipient, "error": error.to_dict()} for recipient, error in failed],
        "failedNumbers": ",".join(recipient for recipient, _ in failed),
    }


def send_to_recipient(delivery: Delivery, recipient: str, pacer: Pacer | None = None) -> dict[str, Any]:
    """One recipient's message. When records are written after the POST (idempotency, the task
    token), the POST keeps a reserve of time for them."""
    bookkeeping = any(x is not None for x in (delivery.idempotency, delivery.claims, delivery.request.task_token))
    post_deadline = delivery.deadline.less(BOOKKEEPING_RESERVE_SECONDS) if bookkeeping else delivery.deadline
    try:
        if delivery.claims is not None:
            message = send_claimed_once(delivery, delivery.claims, recipient, post_deadline, pacer)
        elif delivery.idempotency is not None:
            message = send_at_most_once(delivery, delivery.idempotency, recipient, post_deadline, pacer)
        else:
            message = post_then_look_up(delivery, recipient, post_deadline, pacer)
    except TwilioRequestRejected as error:
        if error.twilio_code == OPTED_OUT_CODE:
            _suppress_after_rejection(delivery, recipient)
        raise
    _record_sent(delivery, message)
    return message


def _record_sent(delivery: Delivery, message: dict[str, Any]) -> None:
    """The message's first delivery record. The message is out whatever happens here: a failure
    is logged, not raised (raising would make a caller retry the send); its callbacks create
    the record."""
    send_at = delivery.request.send_at.timestamp() if delivery.request.send_at else None
    try:
        final = delivery.records.record_sent(
            message,
            reconcile_after=delivery.reconcile_after,
            send_at=send_at,
            campaign=delivery.campaign,
            deadline=delivery.deadline,
        )
        if final and delivery.campaign:  # its final status came before the send's answer
            from twilio_messaging.campaign_store import count_delivery

            count_delivery(delivery.records.table, delivery.campaign, final, delivery.deadline)
    except TwilioMessagingError as error:
        count("DeliveryRecordFailures")
        logger.warning("Message sent, but its delivery record was not written", extra={"reason": error.message})


def _suppress_after_rejection(delivery: Delivery, recipient: str) -> None:
    request = delivery.request
    try:
        after_rejection(
            delivery.suppressions, recipient, request.messaging_service_sid or request.sender, delivery.deadline
        )
    except TwilioMessagingError as error:
        logger.warning("Could not record an opt-out Twilio reported", extra={"reason": error.message})


def send_at_most_once(
    delivery: Delivery, idempotency: Idempotency, recipient: str, post_deadline: Deadline, pacer: Pacer | None
) -> dict[str, Any]:
    """At most one message per key and recipient, whatever fails and is retried."""
    from twilio_messaging.idempotency_store import marker_for

    marker, table = marker_for(idempotency.key, recipient), idempotency.table

    def attempt() -> dict[str, Any]:
        earlier = table.note_send_attempt(marker, time.time(), delivery.deadline)  # before POST
        if earlier is not None and (found := sent_by_earlier_attempt(delivery, recipient, earlier, post_deadline)):
            _clear_attempt(table, marker, delivery.deadline)
            return found
        try:
            message = post_then_look_up(delivery, recipient, post_deadline, pacer)
        except SendOutcomeUnknown:
            raise  # the note stays: a retry with this key looks for the message first
        except TwilioMessagingError:
            _clear_attempt(table, marker, delivery.deadline)  # Twilio's answer says it did not take the send
            raise
        _clear_attempt(table, marker, delivery.deadline)
        return message

    result: dict[str, Any] = idempotency.store.at_most_once(
        idempotency.key, recipient, idempotency.fingerprint, attempt, delivery.deadline
    )
    return result


def send_claimed_once(
    delivery: Delivery, claims: SendClaims, recipient: str, post_deadline: Deadline, pacer: Pacer | None
) -> dict[str, Any]:
    """At most one message per claim key and recipient: the claim, the POST, the answer kept."""
    claim = claims.claim(recipient, delivery.deadline)
    if claim.answer is not None:
        logger.info("Idempotent repeat: first answer returned, nothing sent", extra={"to": recipient})
        return claim.answer
    if claim.earlier is not None:
        try:
            found = sent_by_earlier_attempt(delivery, recipient, claim.earlier, post_deadline)
        except TwilioMessagingError:
            _let_go(claims, recipient, delivery.deadline, outcome_known=False)  # still unknown
            raise
        if found is not None:
            claims.keep(recipient, found, delivery.deadline)
            return found
    try:
        message = post_then_look_up(delivery, recipient, post_deadline, pacer)
    except SendOutcomeUnknown:
        _let_go(claims, recipient, delivery.deadline, outcome_known=False)
        raise
    except TwilioMessagingError:
        _let_go(claims, recipient, delivery.deadline, outcome_known=True)
        raise
    try:
        claims.keep(recipient, message, delivery.deadline)
    except TwilioMessagingError as error:  # the claim's hold runs out; a retry looks on Twilio first
        logger.warning("Message sent but its claim was not updated", extra={"reason": error.message})
    return message


def _let_go(claims: SendClaims, recipient: str, deadline: Deadline, *, outcome_known: bool) -> None:
    """A claim not let go only holds a retry back until it runs out: never worth failing for."""
    try:
        claims.let_go(recipient, deadline, outcome_known=outcome_known)
    except TwilioMessagingError:
        logger.warning("Could not let go of a send's claim")


def sent_by_earlier_attempt(
    delivery: Delivery, recipient: str, earlier: float, deadline: Deadline
) -> dict[str, Any] | None:
    """The message an earlier attempt with the key sent without learning it had, if Twilio lists it."""
    found = find_sent_message(delivery, recipient, earlier, deadline)
    if found is not None:
        logger.info("An earlier attempt with this key did send the message", extra={"sid": found["sid"]})
        count("MessagesSent")  # the attempt that sent it never counted it
    return found


def _clear_attempt(table: StateTable, marker: str, deadline: Deadline) -> None:
    """A note left behind only costs a retry one look at Twilio's list: never worth failing for."""
    try:
        table.clear_send_attempt(marker, deadline)
    except TwilioMessagingError:
        logger.warning("Could not clear the note of a send attempt")


def post_then_look_up(
    delivery: Delivery, recipient: str, deadline: Deadline, pacer: Pacer | None = None
) -> dict[str, Any]:
    """post_message; when its outcome is unknown, Twilio's list of messages tells whether it went out."""
    started = time.time()
    try:
        return post_message(delivery, recipient, deadline, pacer)
    except SendOutcomeUnknown as error:
        if deadline.remaining() < LOOKUP_MIN_SECONDS:
            error.details.append({"field": "(outcome)", "problem": "no time left to look the message up on Twilio"})
            raise
        try:
            found = find_sent_message(delivery, recipient, started, deadline)
        except TwilioMessagingError:
            found = None
        if found is None:
            error.details.append({"field": "(outcome)", "problem": "Twilio lists no such message yet"})
            raise
        logger.warning("Send failed in transit but Twilio has the message", extra={"sid": found["sid"]})
        count("MessagesSent")
        return found


def post_message(delivery: Delivery, recipient: str, deadline: Deadline, pacer: Pacer | None = None) -> dict[str, Any]:
    client = delivery.client
    resource = client.request_json(
        "POST",
        client.account_url("/Messages.json", deadline),
        data=delivery.request.twilio_form(recipient, delivery.status_callback),
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


def find_sent_message(delivery: Delivery, recipient: str, since: float, deadline: Deadline) -> dict[str, Any] | None:
    """The message a send whose outcome was unknown did create, when Twilio lists it: same
    recipient, sender and body, created since the attempt began."""
    client = delivery.client
    resource = client.request_json(
        "GET",
        client.account_url("/Messages.json", deadline),
        params=[("To", recipient), ("PageSize", "20")],
        deadline=deadline,
    )
    for item in resource.get("messages") or []:
        if isinstance(item, dict) and _is_that_message(message := normalize_message(item), delivery, recipient, since):
            return message
    return None


def _is_that_message(message: dict[str, Any], delivery: Delivery, recipient: str, since: float) -> bool:
    request = delivery.request
    created = parse_datetime(str(message.get("dateCreated") or ""))
    if message.get("to") != recipient or created is None or created.timestamp() < since - CLOCK_SKEW_SECONDS:
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


def record_failure(error: TwilioMessagingError) -> None:
    """Failures by code: Twilio's error code when it gave one (21211, 21610, …), else ours."""
    count_failure(str(error.twilio_code) if error.twilio_code else error.code)
