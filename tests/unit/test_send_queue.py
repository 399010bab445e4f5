"""The send queue's consumer on its own (send_queue): what becomes of each event by the outcome of
its send, with a stand-in for the send and for SQS. The whole path, with moto's queues and a
loopback Twilio, is tests/integration/test_send_queue.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from twilio_messaging import errors
from twilio_messaging.deadline import Deadline
from twilio_messaging.message_queue import MessageQueue
from twilio_messaging.send_pacer import SendPacer
from twilio_messaging.send_queue import (
    MAX_DELAY_SECONDS,
    REQUEUE_MAX_AGE_SECONDS,
    SEND_WINDOW_SECONDS,
    Outcome,
    Queues,
    consume,
    outcome_of,
    requeue_delay,
)


@dataclass(frozen=True)
class Queued:
    message_id: str
    body: str = '{"id": "event"}'
    event_id: str | None = None
    problem: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    sent_at: float | None = None


class FakeSqs:
    """MessageQueue's stand-in: what was sent where, or a failure."""

    def __init__(self, failure: errors.TwilioMessagingError | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.failure = failure
        self.lock = threading.Lock()

    def send(self, queue_url: str, body: str, deadline: Deadline, **options: Any) -> str:
        if self.failure is not None:
            raise self.failure
        with self.lock:
            self.sent.append({"queue": queue_url, "body": body, **options})
        return "copy"


def queues(sqs: FakeSqs) -> Queues:
    return Queues(cast(MessageQueue, sqs), "queue-url", "dead-letter-url")


def run(
    events: list[Queued], send: Any, sqs: FakeSqs | None = None, in_flight: int = 5, seconds: float = 29.5
) -> tuple[dict[str, errors.TwilioMessagingError], FakeSqs]:
    sqs = sqs or FakeSqs()
    return consume(events, lambda event, *_: send(event), queues(sqs), in_flight, Deadline.after(seconds)), sqs


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (errors.TwilioRateLimited("429"), Outcome.REQUEUED),
        (errors.TwilioUnavailable("5xx"), Outcome.RETRIED),
        (errors.AwsServiceUnavailable("throttled"), Outcome.RETRIED),
        (errors.SendOutcomeUnknown("timed out"), Outcome.RETRIED),
        (errors.IdempotencyInProgress("in progress"), Outcome.RETRIED),
        (errors.ConfigurationError("no secret"), Outcome.RETRIED),
        (errors.InternalError("bug"), Outcome.RETRIED),
        (errors.ValidationError("bad"), Outcome.DEAD_LETTERED),
        (errors.TwilioRequestRejected("21211"), Outcome.DEAD_LETTERED),
        (errors.RecipientSuppressed("STOP"), Outcome.DEAD_LETTERED),
        (errors.IdempotencyKeyReused("other request"), Outcome.DEAD_LETTERED),
    ],
)
def test_each_failure_has_its_outcome(error: errors.TwilioMessagingError, outcome: Outcome) -> None:
    assert outcome_of(error, Deadline.after(10)) is outcome


def test_a_failure_that_sent_nothing_at_the_end_of_the_window_ran_out_of_time() -> None:
    """Re-queued like an event never reached; an unknown outcome stays a batch item failure."""
    window = Deadline.after(1.0)
    assert outcome_of(errors.TwilioUnavailable("no time left", timed_out=True), window) is Outcome.REQUEUED
    assert outcome_of(errors.AwsServiceUnavailable("no time left", timed_out=True), window) is Outcome.REQUEUED
    assert outcome_of(errors.SendOutcomeUnknown("timed out", timed_out=True), window) is Outcome.RETRIED


def test_every_event_is_acknowledged_requeued_dead_lettered_or_returned() -> None:
    outcomes: dict[str, Any] = {
        "sent": {"sid": "SM1"},
        "throttled": errors.TwilioRateLimited("429", retry_after=7),
        "unknown": errors.SendOutcomeUnknown("timed out"),
        "rejected": errors.TwilioRequestRejected("The 'To' number +15558675311 is not valid", twilio_code=21211),
        "bug": RuntimeError("boom"),
    }

    def send(event: Queued) -> Any:
        result = outcomes[event.message_id]
        if isinstance(result, Exception):
            raise result
        return result

    failures, sqs = run([Queued(name, event_id=name) for name in outcomes], send)
    assert {k: type(v) for k, v in failures.items()} == {
        "unknown": errors.SendOutcomeUnknown,
        "bug": errors.InternalError,
    }
    [copy] = [m for m in sqs.sent if m["queue"] == "queue-url"]
    assert copy["delay_seconds"] == 7 and copy["attributes"]["REQUEUE_ATTEMPT"] == 1
    [dead] = [m for m in sqs.sent if m["queue"] == "dead-letter-url"]
    assert dead["attributes"] == {
        "ERROR_CODE": "TWILIO_REJECTED",
        "ERROR_MESSAGE": "The 'To' number +***5311 is not valid",
    }


def test_a_body_that_is_no_event_is_dead_lettered_without_a_send() -> None:
    def send(event: Queued) -> Any:
        raise AssertionError("not sent")

    failures, sqs = run([Queued("m", body="not json", problem="is not JSON")], send)
    assert failures == {}
    assert sqs.sent[0]["attributes"]["ERROR_CODE"] == "VALIDATION_ERROR"
    assert "is not JSON" in sqs.sent[0]["attributes"]["ERROR_MESSAGE"]


def test_a_requeue_or_dead_letter_that_fails_is_returned() -> None:
    def send(event: Queued) -> Any:
        raise errors.TwilioRateLimited("429") if event.message_id == "a" else errors.ValidationError("bad")

    broken = FakeSqs(errors.ConfigurationError("the send queue cannot be used (QueueDoesNotExist)"))
    failures, _ = run([Queued("a", event_id="1"), Queued("b", event_id="2")], send, broken)
    assert set(failures) == {"a", "b"} and all(isinstance(e, errors.ConfigurationError) for e in failures.values())


def test_an_event_throttled_for_hours_goes_to_the_dead_letter_queue() -> None:
    """Its sent recipients' idempotency records (24 h) must outlive a redrive."""
    old = str(int(time.time() - REQUEUE_MAX_AGE_SECONDS - 60))
    event = Queued("m", event_id="1", attributes={"REQUEUE_ATTEMPT": "40", "FIRST_QUEUED_AT": old})

    def send(event: Queued) -> Any:
        raise errors.TwilioRateLimited("429")

    failures, sqs = run([event], send)
    assert failures == {}
    [dead] = sqs.sent
    assert dead["queue"] == "dead-letter-url" and dead["attributes"]["ERROR_CODE"] == "RATE_LIMITED"
    assert "6 hours" in dead["attributes"]["ERROR_MESSAGE"]


def test_a_copy_keeps_when_the_event_first_arrived_and_counts_its_attempts() -> None:
    event = Queued("m", event_id="1", attributes={"REQUEUE_ATTEMPT": "2", "FIRST_QUEUED_AT": "1799996400"})
    sent_at = Queued("n", event_id="2", sent_at=1800000000.5)

    def send(event: Queued) -> Any:
        raise errors.TwilioRateLimited("429")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", lambda: 1800000100.0)
        _, sqs = run([event, sent_at], send)
    attributes = {m["attributes"]["REQUEUE_ATTEMPT"]: m["attributes"]["FIRST_QUEUED_AT"] for m in sqs.sent}
    assert attributes == {3: 1799996400, 1: 1800000000}


@pytest.mark.parametrize(
    ("codes", "outcome"),
    [
        (["TWILIO_REJECTED", "RATE_LIMITED"], Outcome.REQUEUED),
        (["TWILIO_REJECTED", "SEND_OUTCOME_UNKNOWN"], Outcome.RETRIED),
        (["TWILIO_REJECTED", "RECIPIENT_SUPPRESSED"], Outcome.DEAD_LETTERED),
    ],
)
def test_a_batch_send_takes_the_outcome_of_its_most_retryable_failed_recipient(
    codes: list[str], outcome: Outcome
) -> None:
    answer = {
        "messages": [{"sid": "SM1", "to": "+15558675310"}],
        "failed": [
            {"to": f"+1555867531{i + 1}", "error": {"code": code, "message": code}} for i, code in enumerate(codes)
        ],
    }
    failures, sqs = run([Queued("m", event_id="1")], lambda event: answer)
    queues_used = [m["queue"] for m in sqs.sent]
    expected = {
        Outcome.REQUEUED: (["queue-url"], {}),
        Outcome.RETRIED: ([], {"m": errors.SendOutcomeUnknown}),
        Outcome.DEAD_LETTERED: (["dead-letter-url"], {}),
    }[outcome]
    assert (queues_used, {k: type(v) for k, v in failures.items()}) == expected
    if outcome is Outcome.DEAD_LETTERED:
        assert sqs.sent[0]["attributes"] == {
            "ERROR_CODE": "RECIPIENT_SUPPRESSED,TWILIO_REJECTED",
            "ERROR_MESSAGE": "2 of 3 recipients failed: +***5311 TWILIO_REJECTED; +***5312 RECIPIENT_SUPPRESSED",
        }


def test_one_pacer_bounds_every_send_of_the_batch() -> None:
    seen: list[tuple[SendPacer, int, float]] = []
    lock = threading.Lock()

    def send_event(event: Queued, window: Deadline, pacer: SendPacer, concurrency: int) -> dict[str, Any]:
        with lock:
            seen.append((pacer, concurrency, window.remaining()))
        return {"sid": "SM1"}

    events = [Queued(f"m{i}", event_id=str(i)) for i in range(10)]
    assert consume(events, send_event, queues(FakeSqs()), 5, Deadline.after(29.5)) == {}
    assert len({id(pacer) for pacer, _, _ in seen}) == 1 and seen[0][0].maximum == 5
    assert {concurrency for _, concurrency, _ in seen} == {5}, "a batch send's workers: no more than the bound"
    assert all(remaining <= SEND_WINDOW_SECONDS for _, _, remaining in seen)
    consume(events[:1], send_event, queues(FakeSqs()), 5, Deadline.after(10))
    assert seen[-1][2] <= 8.0, "2 s kept back to re-queue"


def test_repeats_of_an_event_in_one_batch_are_sent_once() -> None:
    sent: list[str] = []
    failures, _ = run(
        [Queued("a", event_id="1"), Queued("b", event_id="1"), Queued("c", event_id="2")],
        lambda event: sent.append(event.message_id) or {"sid": "SM1"},
    )
    assert failures == {} and sorted(sent) == ["a", "c"]


@pytest.mark.parametrize("attempt", range(1, 16))
def test_requeue_delays_double_with_jitter_up_to_900_seconds(attempt: int) -> None:
    ceiling = min(MAX_DELAY_SECONDS, 2.0 * 2 ** (attempt - 1))
    delays = {requeue_delay(attempt) for _ in range(50)}
    assert all(max(1, int(ceiling / 2)) <= delay <= ceiling for delay in delays), delays


def test_requeue_delays_honour_retry_after_within_sqs_limit() -> None:
    assert requeue_delay(1, retry_after=30) == 30
    assert requeue_delay(1, retry_after=5000) == MAX_DELAY_SECONDS
