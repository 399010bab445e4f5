"""The send queue's consumer: the EventBridge `Send Message` events of one SQS batch, sent at once
within one shared bound, each one then acknowledged, re-queued, dead-lettered or left for SQS to
deliver again (docs/architecture.md, "The send queue"; docs/api.md, the EventBridge section).

- Sent, or an idempotent repeat: acknowledged.
- `RATE_LIMITED` after the client's own retries, or no time left in this invocation to send it: a
  delayed copy goes back to the queue (a doubling backoff with jitter, at least Twilio's
  Retry-After, at most 900 s; its attempt in REQUEUE_ATTEMPT) and the original is acknowledged.
  A throttled event never reaches the dead-letter queue for having been received too often; only
  a re-queue that fails makes it a batch item failure.
- A failure that may pass (Twilio or AWS unavailable, an unknown outcome, a send in progress, the
  configuration, a bug): a batch item failure. SQS delivers it again after its visibility timeout
  and moves it to the dead-letter queue on the 5th receive. The event id is the idempotency key:
  a redelivery never sends twice.
- A failure that never passes (the request, Twilio's refusal, an opt-out, a reused key, a body
  that is no event): straight to the dead-letter queue with ERROR_CODE and ERROR_MESSAGE (the
  names EventBridge gives its own dead letters), and acknowledged.

A batch send (`to` an array) takes the outcome of its most retryable failed recipient; a retry
with the same event id sends only to the recipients that have no message yet.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import (
    AwsServiceUnavailable,
    ConfigurationError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InternalError,
    RecipientSuppressed,
    SendOutcomeUnknown,
    TwilioMessagingError,
    TwilioRateLimited,
    TwilioRequestRejected,
    TwilioUnavailable,
    ValidationError,
)
from twilio_messaging.observability import count, logger, mask_phone_numbers
from twilio_messaging.send_pacer import SendPacer
from twilio_messaging.settings import MAX_BATCH_CONCURRENCY

if TYPE_CHECKING:
    from twilio_messaging.message_queue import MessageQueue

# Kept back from the invocation's deadline to re-queue or dead-letter what its sends left.
REQUEUE_RESERVE_SECONDS = 2.0
# No send of a queue invocation runs past this: the invocation ends well before the function's
# timeout (and its near-timeout alarm at 90 % of it), whatever Twilio does; the rest is re-queued.
SEND_WINDOW_SECONDS = 20.0
# A send that ends with less than this left of the window and sent nothing (Twilio or AWS not
# reached) ran out of time: it is re-queued like an event that was never reached.
OUT_OF_TIME_SECONDS = 1.5
REQUEUE_BASE_SECONDS = 2.0  # the first re-queue's delay is 1 to 2 s; each next one doubles
MAX_DELAY_SECONDS = 900  # SQS's longest DelaySeconds
# An event still throttled this long after it first reached the queue goes to the dead-letter
# queue instead: its sent recipients' idempotency records (24 h) must outlive a redrive.
REQUEUE_MAX_AGE_SECONDS = 6 * 3600
# Send threads of one invocation at most (its records times a batch send's workers); what is in
# flight is bounded by the shared pacer anyway.
MAX_SEND_THREADS = 200
MAX_ERROR_MESSAGE_CHARS = 1000

ATTEMPT_ATTRIBUTE = "REQUEUE_ATTEMPT"  # re-queues so far
FIRST_QUEUED_ATTRIBUTE = "FIRST_QUEUED_AT"  # when the event first reached the queue, epoch seconds
ERROR_CODE_ATTRIBUTE = "ERROR_CODE"
ERROR_MESSAGE_ATTRIBUTE = "ERROR_MESSAGE"


class Outcome(Enum):
    """What becomes of one queued event, the most retryable first."""

    REQUEUED = "requeued"
    RETRIED = "retried"  # a batch item failure: SQS delivers it again
    DEAD_LETTERED = "dead-lettered"
    ACKNOWLEDGED = "acknowledged"


RANK = {outcome: rank for rank, outcome in enumerate(Outcome)}
NOTHING_SENT = frozenset({TwilioUnavailable.code, AwsServiceUnavailable.code})
PERMANENT = frozenset(
    {ValidationError.code, TwilioRequestRejected.code, RecipientSuppressed.code, IdempotencyKeyReused.code}
)
ERROR_TYPES: dict[str, type[TwilioMessagingError]] = {
    error.code: error
    for error in (
        ValidationError,
        TwilioRequestRejected,
        TwilioRateLimited,
        TwilioUnavailable,
        SendOutcomeUnknown,
        ConfigurationError,
        IdempotencyInProgress,
        IdempotencyKeyReused,
        RecipientSuppressed,
        AwsServiceUnavailable,
        InternalError,
    )
}


class QueuedEvent(Protocol):
    """One message of the send queue, as the adapters read it (the handler hands them over)."""

    @property
    def message_id(self) -> str: ...

    @property
    def body(self) -> str: ...  # the EventBridge event as received: what a copy carries unchanged

    @property
    def event_id(self) -> str | None: ...

    @property
    def problem(self) -> str | None: ...  # why the body cannot be sent (it is no EventBridge event)

    @property
    def attributes(self) -> Mapping[str, str]: ...  # message attributes

    @property
    def sent_at(self) -> float | None: ...  # when SQS got this copy, epoch seconds


@dataclass(frozen=True)
class Queues:
    client: MessageQueue
    queue_url: str  # the send queue: delayed copies
    dead_letter_url: str  # its dead-letter queue


class RecipientsFailed(TwilioMessagingError):
    """Recipients of a batch send that failed for good (the others have their message)."""

    code = "RECIPIENTS_FAILED"

    def __init__(self, message: str, codes: list[str]) -> None:
        super().__init__(message)
        self.codes = codes


@dataclass(frozen=True)
class Batch:
    """What every event of one invocation shares."""

    pacer: SendPacer  # sends in flight across the batch
    concurrency: int  # workers of one batch send
    window: Deadline  # when the sends must end
    deadline: Deadline  # when the re-queues and dead letters must end
    queues: Queues


def consume[Q: QueuedEvent](
    events: Sequence[Q],
    send_event: Callable[[Q, Deadline, SendPacer, int], dict[str, Any]],
    queues: Queues,
    in_flight: int,
    deadline: Deadline,
) -> dict[str, TwilioMessagingError]:
    """The events SQS must deliver again (the batch item failures), by message id, with their
    error; every other one is acknowledged: sent, re-queued or dead-lettered. `send_event(event,
    window, pacer, concurrency)` sends one event (the handler's operation); at most `in_flight`
    sends of the whole batch are in flight at once."""
    window = min(deadline.less(REQUEUE_RESERVE_SECONDS), Deadline.after(SEND_WINDOW_SECONDS), key=_expiry)
    workers = max(1, min(in_flight, MAX_BATCH_CONCURRENCY, MAX_SEND_THREADS // max(1, len(events))))
    batch = Batch(SendPacer(in_flight), workers, window, deadline, queues)

    def settle(event: Q) -> tuple[str, TwilioMessagingError | None]:
        return event.message_id, _consume_one(event, lambda: send_event(event, window, batch.pacer, workers), batch)

    with ThreadPoolExecutor(max_workers=max(1, len(events)), thread_name_prefix="queued") as pool:
        outcomes = list(pool.map(settle, _first_of_each(events)))
    return {message_id: error for message_id, error in outcomes if error is not None}


def _expiry(deadline: Deadline) -> float:
    return deadline.expires_at


def _first_of_each[Q: QueuedEvent](events: Sequence[Q]) -> list[Q]:
    """The events less the repeats of an event id within the batch (EventBridge delivers at least
    once): a repeat is acknowledged, since its first copy is sent, re-queued or delivered again."""
    seen: set[str] = set()
    unique = []
    for event in events:
        if event.event_id is not None and event.event_id in seen:
            logger.info("Queued event repeated in its batch", extra=_log_fields(event, Outcome.ACKNOWLEDGED))
            continue
        if event.event_id is not None:
            seen.add(event.event_id)
        unique.append(event)
    return unique


def _consume_one(event: QueuedEvent, send: Callable[[], dict[str, Any]], batch: Batch) -> TwilioMessagingError | None:
    """The error of an event SQS must deliver again, else None."""
    try:
        outcome, error = _send(event, send, batch.window)
        return _settle(event, outcome, error, batch)
    except TwilioMessagingError as error:  # a re-queue or a dead letter that failed
        logger.warning("Queued event could not be settled", extra={**_log_fields(event), "code": error.code})
        return error
    except Exception:
        logger.exception("Unexpected error with a queued event", extra=_log_fields(event))
        return InternalError("unexpected error; see the function's logs")


def _send(
    event: QueuedEvent, send: Callable[[], dict[str, Any]], window: Deadline
) -> tuple[Outcome, TwilioMessagingError | None]:
    if event.problem is not None:
        return Outcome.DEAD_LETTERED, ValidationError.from_problems([{"field": "(body)", "problem": event.problem}])
    if window.remaining() < OUT_OF_TIME_SECONDS:
        return Outcome.REQUEUED, TwilioUnavailable("no time left to send it in this invocation", timed_out=True)
    try:
        result = send()
    except TwilioMessagingError as error:
        return outcome_of(error, window), error
    failed = result.get("failed") or [] if "failed" in result else []
    if not failed:
        return Outcome.ACKNOWLEDGED, None
    return _batch_outcome(failed, len(failed) + len(result.get("messages") or []), window)


def outcome_of(error: TwilioMessagingError, window: Deadline) -> Outcome:
    if isinstance(error, TwilioRateLimited):
        return Outcome.REQUEUED
    if error.code in NOTHING_SENT and window.remaining() < OUT_OF_TIME_SECONDS:
        return Outcome.REQUEUED  # time ran out before it could be sent
    if error.code in PERMANENT:
        return Outcome.DEAD_LETTERED
    return Outcome.RETRIED


def _batch_outcome(
    failed: list[dict[str, Any]], recipients: int, window: Deadline
) -> tuple[Outcome, TwilioMessagingError]:
    """A batch send's failed recipients: the outcome of the most retryable one. When every one
    failed for good, one error that names each (numbers masked) for the dead letter."""
    errors = [_rebuilt(entry.get("error") or {}) for entry in failed]
    outcome, error = min(((outcome_of(e, window), e) for e in errors), key=lambda pair: RANK[pair[0]])
    if outcome is not Outcome.DEAD_LETTERED:
        return outcome, error
    described = "; ".join(
        f"{mask_phone_numbers(str(entry.get('to')))} {e.code}" for entry, e in zip(failed, errors, strict=True)
    )
    summary = f"{len(failed)} of {recipients} recipients failed: {described}"
    return outcome, RecipientsFailed(summary, sorted({e.code for e in errors}))


def _rebuilt(body: dict[str, Any]) -> TwilioMessagingError:
    """A batch answer's error entry as the error it was."""
    kind = ERROR_TYPES.get(str(body.get("code")), InternalError)
    retry_after = body.get("retryAfter")
    return kind(
        str(body.get("message") or ""),
        twilio_code=body.get("twilioCode"),
        retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
    )


def _settle(
    event: QueuedEvent, outcome: Outcome, error: TwilioMessagingError | None, batch: Batch
) -> TwilioMessagingError | None:
    if error is None:  # sent, or an idempotent repeat
        logger.info("Queued event sent", extra=_log_fields(event, Outcome.ACKNOWLEDGED))
        return None
    if outcome is Outcome.REQUEUED and time.time() - first_queued_at(event) >= REQUEUE_MAX_AGE_SECONDS:
        hours = REQUEUE_MAX_AGE_SECONDS // 3600
        error, outcome = (
            TwilioRateLimited(f"not sent {hours} hours after it was queued: {error.message}"),
            Outcome.DEAD_LETTERED,
        )
    if outcome is Outcome.REQUEUED:
        requeue(event, error, batch.queues, batch.deadline)
    elif outcome is Outcome.DEAD_LETTERED:
        dead_letter(event, error, batch.queues, batch.deadline)
    else:
        count("SendQueueRetries")  # the adapters log it, with the whole error
        return error
    return None


def requeue(event: QueuedEvent, error: TwilioMessagingError, queues: Queues, deadline: Deadline) -> None:
    """A delayed copy of the event on the send queue, its attempt counted."""
    attempt = attempt_of(event) + 1
    delay = requeue_delay(attempt, error.retry_after)
    attributes: dict[str, str | int] = {ATTEMPT_ATTRIBUTE: attempt, FIRST_QUEUED_ATTRIBUTE: int(first_queued_at(event))}
    queues.client.send(
        queues.queue_url, event.body, deadline, what="the send queue", delay_seconds=delay, attributes=attributes
    )
    count("SendQueueRequeues")
    fields = {**_log_fields(event, Outcome.REQUEUED), "code": error.code, "attempt": attempt, "delaySeconds": delay}
    logger.info("Queued event re-queued", extra=fields)


def dead_letter(event: QueuedEvent, error: TwilioMessagingError, queues: Queues, deadline: Deadline) -> None:
    """The event on the dead-letter queue, with why (numbers masked)."""
    code = ",".join(error.codes) if isinstance(error, RecipientsFailed) else error.code
    message = str(mask_phone_numbers(error.message))[:MAX_ERROR_MESSAGE_CHARS]
    attributes: dict[str, str | int] = {ERROR_CODE_ATTRIBUTE: code, ERROR_MESSAGE_ATTRIBUTE: message}
    queues.client.send(
        queues.dead_letter_url, event.body, deadline, what="the dead-letter queue", attributes=attributes
    )
    count("SendQueueDeadLettered")
    logger.warning("Queued event dead-lettered", extra={**_log_fields(event, Outcome.DEAD_LETTERED), "code": code})


def requeue_delay(attempt: int, retry_after: float | None = None) -> int:
    """Seconds before re-queue number `attempt` (from 1) is delivered: half of a doubling ceiling
    (2 s, 4 s, … 900 s) plus a random part of the other half, at least Twilio's Retry-After."""
    ceiling = min(MAX_DELAY_SECONDS, REQUEUE_BASE_SECONDS * 2 ** min(max(attempt, 1) - 1, 10))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    return int(min(MAX_DELAY_SECONDS, max(delay, retry_after or 0.0, 1.0)))


def attempt_of(event: QueuedEvent) -> int:
    try:
        return max(0, int(event.attributes.get(ATTEMPT_ATTRIBUTE, "0")))
    except ValueError:
        return 0


def first_queued_at(event: QueuedEvent) -> float:
    """When the event first reached the queue: carried by its copies, else this copy's own."""
    try:
        return float(event.attributes[FIRST_QUEUED_ATTRIBUTE])
    except (KeyError, ValueError):
        return event.sent_at if event.sent_at is not None else time.time()


def _log_fields(event: QueuedEvent, outcome: Outcome | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"messageId": event.message_id, "eventId": event.event_id, "attempt": attempt_of(event)}
    if outcome is not None:
        fields["outcome"] = outcome.value
    return fields
