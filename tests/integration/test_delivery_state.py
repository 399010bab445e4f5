"""Delivery state you can trust: each message's record (the send writes the first), statuses that
only move forward however callbacks arrive (out of order, repeated, concurrent), the history on
GET /messages/{sid}/events, and lost callbacks found by the reconciler (moto, a loopback Twilio,
signed callbacks through the webhook handler)."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from tests.support import (
    ACCOUNT_SID,
    EVENTS,
    STATE_TABLE,
    Bus,
    LambdaContext,
    api_event,
    load_handler,
    signed_webhook_event,
    twilio_message,
)

MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
PUBLIC_BASE_URL = "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod"  # the sample events' URL


@pytest.fixture
def bus(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Bus:
    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    return Bus()


def sent(twilio: Any, sid: str | None = None, status: str = "queued", **send: Any) -> str:
    """A message sent through the send handler (Twilio answers `status`): its sid."""
    sid = sid or "SM" + uuid.uuid4().hex
    twilio.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        twilio_message(sid=sid, status=status), status=201
    )
    payload = {"to": "+15558675310", "body": "Your order #1234 has shipped.", **send}
    answer = load_handler("send_message").lambda_handler(payload, LambdaContext())
    assert answer["sid"] == sid, answer
    return sid


def callback(sid: str, status: str, error_code: str | None = None) -> int:
    event = signed_webhook_event(message_sid=sid, status=status, error_code=error_code)
    return int(load_handler("webhook").lambda_handler(event, LambdaContext())["statusCode"])


def events_of(sid: str) -> dict[str, Any]:
    answer = load_handler("get_message").lambda_handler({"sid": sid, "events": True}, LambdaContext())
    return dict(answer)


def record(sid: str) -> dict[str, Any]:
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=STATE_TABLE, Key={"id": {"S": f"message#{sid}"}}
    )
    return dict(item["Item"])


def test_a_send_writes_the_first_record(bus: Bus, twilio: Any) -> None:
    sid = sent(twilio)
    history = events_of(sid)
    assert (history["status"], history["errorCode"]) == ("queued", None)
    [first] = history["events"]
    assert (first["status"], first["applied"], first["source"]) == ("queued", True, "send")
    stored = record(sid)
    assert stored["pending"] == {"S": "pending"}  # sent with this deployment's callback: reconciled
    days = int(stored["expiration"]["N"]) - int(stored["sent_at"]["N"])
    assert days == 30 * 86400  # MESSAGE_RECORD_DAYS


def test_a_message_with_its_own_callback_is_recorded_but_not_reconciled(bus: Bus, twilio: Any) -> None:
    sid = sent(twilio, statusCallback="https://example.com/callbacks")
    assert "pending" not in record(sid)
    assert events_of(sid)["status"] == "queued"


def test_a_scheduled_send_lives_from_its_send_at(bus: Bus, twilio: Any) -> None:
    send_at = int(time.time()) + 10 * 86400
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(send_at))
    sid = sent(twilio, status="scheduled", messagingServiceSid="MG" + "0" * 32, sendAt=at)
    stored = record(sid)
    assert int(stored["expiration"]["N"]) >= send_at + 30 * 86400 - 1
    assert int(stored["reconcile_until"]["N"]) >= send_at + 72 * 3600 - 1


def test_statuses_only_move_forward_and_each_move_is_published_once(bus: Bus, twilio: Any) -> None:
    sid = sent(twilio)
    for status in ("sent", "delivered", "sending", "sent", "delivered", "read", "undelivered"):
        assert callback(sid, status) == 200
    published = [(e["detail"]["status"], e["detail"]["previousStatus"]) for e in bus.published()]
    assert published == [("sent", "queued"), ("delivered", "sent"), ("read", "delivered")]
    history = events_of(sid)
    assert history["status"] == "read"
    reported = [(e["status"], e["applied"]) for e in history["events"]]
    assert reported == [
        ("queued", True),
        ("sent", True),
        ("delivered", True),
        ("sending", False),  # would move back: kept, not applied
        ("read", True),
        ("undelivered", False),
    ]  # the repeats of sent and delivered stopped at the webhook's de-duplication
    assert "pending" not in record(sid)  # final: out of the reconciler's index


def test_a_callback_before_the_sends_answer_keeps_its_status(bus: Bus, twilio: Any) -> None:
    sid = "SM" + uuid.uuid4().hex
    assert callback(sid, "delivered") == 200  # Twilio's callback outran the send's answer
    sent(twilio, sid)
    history = events_of(sid)
    assert history["status"] == "delivered"
    assert [(e["status"], e["applied"]) for e in history["events"]] == [("delivered", True), ("queued", False)]


def test_concurrent_callbacks_lose_no_update(bus: Bus, twilio: Any) -> None:
    """Fifty deliveries of the statuses, at once and in any order: the record ends at the last
    status, and each status that applied was published exactly once."""
    sid = sent(twilio)
    statuses = ["sending", "sent", "delivered"] * 10
    random.Random(7).shuffle(statuses)
    answers: list[int] = []

    def deliver(status: str) -> None:
        event = signed_webhook_event(message_sid=sid, status=status)
        event["headers"]["I-Twilio-Idempotency-Token"] = uuid.uuid4().hex
        answers.append(int(load_handler("webhook").lambda_handler(event, LambdaContext())["statusCode"]))

    threads = [threading.Thread(target=deliver, args=(status,)) for status in statuses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert set(answers) <= {200, 409}
    history = events_of(sid)
    assert history["status"] == "delivered"
    applied = [e["status"] for e in history["events"] if e["applied"]]
    published = [e["detail"]["status"] for e in bus.published()]
    assert sorted(published) == sorted(applied[1:])  # every applied status but the send's own
    assert len(published) == len(set(published))
    assert applied.index("delivered") == len(applied) - 1


def test_an_event_owed_after_a_failed_publish_is_published_by_twilios_retry(
    bus: Bus, twilio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twilio_messaging.aws_json import AwsCallFailed, AwsJsonClient

    sid = sent(twilio)
    real_call = AwsJsonClient.call
    failing = {"on": True}

    def put_events_fails(self: AwsJsonClient, operation: str, payload: dict[str, Any], timeout: Any = None) -> Any:
        if operation == "PutEvents" and failing["on"]:
            raise AwsCallFailed("InternalFailure", 500)
        return real_call(self, operation, payload, timeout)

    monkeypatch.setattr(AwsJsonClient, "call", put_events_fails)
    assert callback(sid, "delivered") == 503  # applied, but its event did not go out
    failing["on"] = False
    assert callback(sid, "delivered") == 200  # Twilio's retry
    [event] = bus.published()
    assert (event["detail"]["status"], event["detail"]["previousStatus"]) == ("delivered", "queued")
    assert callback(sid, "delivered") == 200  # a further retry: a duplicate
    assert bus.published() == []


def test_events_of_an_unknown_message_are_404(bus: Bus) -> None:
    event = api_event("get_message/api_gateway_events.json")
    answer = load_handler("get_message").lambda_handler(event, LambdaContext())
    assert answer["statusCode"] == 404
    assert json.loads(answer["body"])["error"]["code"] == "MESSAGE_NOT_FOUND"


# --- lost callbacks ---------------------------------------------------------------------------


def reconcile(monkeypatch: pytest.MonkeyPatch, hours_later: float) -> dict[str, Any]:
    """One run of the reconciler, `hours_later` after now (its clock moved, not the table's)."""
    from twilio_messaging import reconciliation

    later = time.time() + hours_later * 3600
    monkeypatch.setattr(reconciliation, "time", SimpleNamespace(time=lambda: later))
    event = json.loads((EVENTS / "reconcile_statuses/scheduled.json").read_text())
    summary: dict[str, Any] = load_handler("reconcile_statuses").lambda_handler(event, LambdaContext())
    return summary


def twilio_reports(twilio: Any, sid: str, status: str, error_code: int | None = None) -> None:
    twilio.expect_request(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json").respond_with_json(
        twilio_message(sid=sid, status=status, error_code=error_code)
    )


def test_a_callback_that_never_comes_is_found_by_the_reconciler(
    bus: Bus, twilio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = sent(twilio)
    assert callback(sid, "sent") == 200
    bus.published()
    assert reconcile(monkeypatch, hours_later=0)["checked"] == 0  # not due yet: 30 minutes after the send
    twilio_reports(twilio, sid, "delivered")
    summary = reconcile(monkeypatch, hours_later=1)
    assert (summary["checked"], summary["applied"]) == (1, 1)
    [event] = bus.published()
    assert (event["detail"]["status"], event["detail"]["previousStatus"]) == ("delivered", "sent")
    assert event["detail"]["reconciled"] is True
    assert events_of(sid)["events"][-1]["source"] == "reconciliation"
    assert reconcile(monkeypatch, hours_later=2)["checked"] == 0  # final: no longer looked at


def test_a_message_still_on_its_way_is_looked_at_again_later(
    bus: Bus, twilio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = sent(twilio)
    twilio_reports(twilio, sid, "sent")
    assert reconcile(monkeypatch, hours_later=1)["applied"] == 1  # queued -> sent
    assert reconcile(monkeypatch, hours_later=1.1)["checked"] == 0  # next look 30 minutes on
    assert reconcile(monkeypatch, hours_later=1.6)["unchanged"] == 1


def test_read_before_delivered_applies_both(bus: Bus, twilio: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = sent(twilio)
    twilio_reports(twilio, sid, "read")
    reconcile(monkeypatch, hours_later=1)
    assert [e["detail"]["status"] for e in bus.published()] == ["delivered", "read"]


def test_after_72_hours_a_message_is_given_up(bus: Bus, twilio: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = sent(twilio)
    summary = reconcile(monkeypatch, hours_later=73)
    assert (summary["givenUp"], summary["checked"]) == (1, 0)
    assert not [r for r, _ in twilio.log if r.method == "GET"]
    assert "pending" not in record(sid)


def test_the_reconciler_completes_a_task_whose_callback_was_lost(
    bus: Bus, twilio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twilio_messaging.aws_json import AwsJsonClient

    completed: list[dict[str, Any]] = []
    real_call = AwsJsonClient.call

    def spy(self: AwsJsonClient, operation: str, payload: dict[str, Any], timeout: Any = None) -> Any:
        if operation.startswith("SendTask"):
            completed.append({"operation": operation, **payload})
            return {}
        return real_call(self, operation, payload, timeout)

    monkeypatch.setattr(AwsJsonClient, "call", spy)
    sid = sent(twilio, taskToken="token-1")
    twilio_reports(twilio, sid, "undelivered", 30003)
    reconcile(monkeypatch, hours_later=1)
    [failure] = completed
    assert failure["operation"] == "SendTaskFailure" and failure["taskToken"] == "token-1"
    assert json.loads(failure["cause"])["errorCode"] == 30003


def test_only_the_pending_index_is_read(bus: Bus, twilio: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reconciler queries the sparse index; it never scans the table."""
    from twilio_messaging.aws_json import AwsJsonClient

    operations: list[str] = []
    real_call = AwsJsonClient.call

    def spy(self: AwsJsonClient, operation: str, payload: dict[str, Any], timeout: Any = None) -> Any:
        operations.append(operation if operation != "Query" else f"Query:{payload.get('IndexName')}")
        return real_call(self, operation, payload, timeout)

    sent(twilio)
    monkeypatch.setattr(AwsJsonClient, "call", spy)
    reconcile(monkeypatch, hours_later=0)
    assert "Scan" not in operations and "Query:pending-index" in operations
