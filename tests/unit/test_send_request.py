"""Validation of the send request: each rule, many problems at once, and the form Twilio receives."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from twilio_messaging.errors import ValidationError
from twilio_messaging.send_request import parse_send_request
from twilio_messaging.settings import Settings

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SERVICE = "MG0123456789abcdef0123456789abcdef"
SETTINGS = Settings(twilio_secret_id="s", default_from="+15005550006")
NO_DEFAULTS = Settings(twilio_secret_id="s")


def problems(payload: Any, settings: Settings = SETTINGS) -> dict[str, str]:
    """The problems of a payload invoked directly (where a task token may be given)."""
    with pytest.raises(ValidationError) as caught:
        parse_send_request(payload, settings, now=NOW, task_token_allowed=True)
    return {p["field"]: p["problem"] for p in caught.value.details}


def form(payload: dict[str, Any], callback: str | None = None, settings: Settings = SETTINGS) -> list[tuple[str, str]]:
    request = parse_send_request(payload, settings, now=NOW)
    return request.twilio_form(request.recipients[0], callback)


def test_minimal_sms_uses_default_from() -> None:
    assert form({"to": "+15558675310", "body": "Hi"}) == [
        ("To", "+15558675310"),
        ("From", "+15005550006"),
        ("Body", "Hi"),
    ]


def test_default_messaging_service_is_preferred_over_default_from() -> None:
    settings = replace(SETTINGS, default_messaging_service_sid=SERVICE)
    assert form({"to": "+15558675310", "body": "Hi"}, settings=settings) == [
        ("To", "+15558675310"),
        ("MessagingServiceSid", SERVICE),
        ("Body", "Hi"),
    ]


def test_explicit_sender_wins_over_defaults() -> None:
    settings = replace(SETTINGS, default_messaging_service_sid=SERVICE)
    assert ("From", "ACME") in form({"to": "+15558675310", "from": "ACME", "body": "Hi"}, settings=settings)
    assert ("MessagingServiceSid", SERVICE) not in form(
        {"to": "+15558675310", "from": "ACME", "body": "Hi"}, settings=settings
    )


def test_every_field_reaches_the_form() -> None:
    send_at = NOW + timedelta(days=1)
    payload = {
        "to": "+15558675310",
        "messagingServiceSid": SERVICE,
        "body": "Hi",
        "mediaUrl": ["https://example.com/a.png", "https://example.com/b.png"],
        "statusCallback": "https://hooks.example.com/status",
        "sendAt": send_at.isoformat(),
        "validityPeriod": 600,
        "shortenUrls": True,
        "sendAsMms": False,
    }
    assert form(payload) == [
        ("To", "+15558675310"),
        ("MessagingServiceSid", SERVICE),
        ("Body", "Hi"),
        ("MediaUrl", "https://example.com/a.png"),
        ("MediaUrl", "https://example.com/b.png"),
        ("StatusCallback", "https://hooks.example.com/status"),
        ("SendAt", "2026-11-23T12:00:00Z"),
        ("ScheduleType", "fixed"),
        ("ValidityPeriod", "600"),
        ("ShortenUrls", "true"),
        ("SendAsMms", "false"),
    ]


def test_send_at_with_offset_is_sent_in_utc() -> None:
    fields = dict(
        form({"to": "+15558675310", "messagingServiceSid": SERVICE, "body": "x", "sendAt": "2026-11-23T14:00:00+02:00"})
    )
    assert fields["SendAt"] == "2026-11-23T12:00:00Z"


def test_content_template_variables_are_json() -> None:
    fields = dict(
        form(
            {
                "to": "whatsapp:+15558675310",
                "from": "whatsapp:+15005550006",
                "contentSid": "HX" + "a" * 32,
                "contentVariables": {"1": "12/1", "2": "3pm"},
            }
        )
    )
    assert json.loads(fields["ContentVariables"]) == {"1": "12/1", "2": "3pm"}
    assert "Body" not in fields


def test_status_callback_passed_in_is_used() -> None:
    assert ("StatusCallback", "https://x.example.com/hook") in form(
        {"to": "+15558675310", "body": "Hi"}, "https://x.example.com/hook"
    )


def test_null_status_callback_disables_the_default() -> None:
    request = parse_send_request({"to": "+15558675310", "body": "Hi", "statusCallback": None}, SETTINGS, now=NOW)
    assert request.status_callback_disabled


def test_array_of_recipients_is_a_batch() -> None:
    request = parse_send_request({"to": ["+15558675310", "+15558675311"], "body": "Hi"}, SETTINGS, now=NOW)
    assert request.batch and request.recipients == ["+15558675310", "+15558675311"]


def test_idempotency_key_and_task_token_are_accepted() -> None:
    request = parse_send_request(
        {"to": "+15558675310", "body": "Hi", "idempotencyKey": "k-1", "taskToken": "tok"},
        SETTINGS,
        task_token_allowed=True,
    )
    assert (request.idempotency_key, request.task_token) == ("k-1", "tok")


def test_a_task_token_is_refused_unless_the_caller_may_name_a_task() -> None:
    """Over HTTP or EventBridge, a task token would make the function complete whatever task
    the caller names, with the function's own role (a confused deputy)."""
    with pytest.raises(ValidationError) as raised:
        parse_send_request({"to": "+15558675310", "body": "Hi", "taskToken": "tok"}, SETTINGS)
    assert [d["field"] for d in raised.value.details] == ["taskToken"]
    assert "Step Functions" in raised.value.details[0]["problem"]
    request = parse_send_request({"to": "+15558675310", "body": "Hi", "taskToken": None}, SETTINGS)
    assert request.task_token is None


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"body": "Hi"}, "to", "required"),
        ({"to": "5558675310", "body": "Hi"}, "to", "E.164"),
        ({"to": "+1555", "body": "Hi"}, "to", "E.164"),
        ({"to": "+15558675310\n", "body": "Hi"}, "to", "E.164"),
        (
            {"to": "+15558675310", "messagingServiceSid": "MG0123456789abcdef0123456789abcdef\n", "body": "Hi"},
            "messagingServiceSid",
            "32 hexadecimal",
        ),
        ({"to": 15558675310, "body": "Hi"}, "to", "not number"),
        ({"to": [], "body": "Hi"}, "to", "1 to 100"),
        ({"to": ["+15558675310"] * 2, "body": "Hi"}, "to[1]", "repeats"),
        ({"to": [f"+1555867{n:04d}" for n in range(101)], "body": "Hi"}, "to", "not 101"),
        ({"to": ["+15558675310", 7], "body": "Hi"}, "to[1]", "E.164"),
        ({"to": "+15558675310", "from": "not a sender!", "body": "Hi"}, "from", "short code"),
        ({"to": "+15558675310", "messagingServiceSid": "MG123", "body": "Hi"}, "messagingServiceSid", "32 hexadecimal"),
        ({"to": "+15558675310", "body": "x" * 1601}, "body", "not 1601"),
        ({"to": "+15558675310", "body": 5}, "body", "string"),
        ({"to": "+15558675310"}, "body", "one of body, mediaUrl or contentSid"),
        ({"to": "+15558675310", "body": ""}, "body", "one of body"),
        ({"to": "+15558675310", "mediaUrl": []}, "mediaUrl", "1 to 10"),
        ({"to": "+15558675310", "mediaUrl": [f"https://e.com/{n}.png" for n in range(11)]}, "mediaUrl", "not 11"),
        ({"to": "+15558675310", "mediaUrl": ["ftp://e.com/a.png"]}, "mediaUrl[0]", "http"),
        ({"to": "+15558675310", "mediaUrl": "https://e.com/a.png"}, "mediaUrl", "array"),
        ({"to": "+15558675310", "contentSid": "HX1"}, "contentSid", "HX"),
        ({"to": "+15558675310", "body": "x", "contentVariables": {"1": "a"}}, "contentVariables", "needs contentSid"),
        ({"to": "+15558675310", "body": "x", "statusCallback": "not a url"}, "statusCallback", "URL"),
        (
            {"to": "+15558675310", "body": "x", "statusCallback": "https://my_host.example.com/x"},
            "statusCallback",
            "underscores",
        ),
        (
            {"to": "+15558675310", "body": "x", "messagingServiceSid": SERVICE, "sendAt": "tomorrow"},
            "sendAt",
            "ISO 8601",
        ),
        (
            {"to": "+15558675310", "body": "x", "messagingServiceSid": SERVICE, "sendAt": "2026-11-23T12:00:00"},
            "sendAt",
            "time zone",
        ),
        (
            {"to": "+15558675310", "body": "x", "messagingServiceSid": SERVICE, "sendAt": "2026-11-22T12:04:00Z"},
            "sendAt",
            "5 minutes",
        ),
        (
            {"to": "+15558675310", "body": "x", "messagingServiceSid": SERVICE, "sendAt": "2027-01-22T12:00:00Z"},
            "sendAt",
            "35 days",
        ),
        ({"to": "+15558675310", "body": "x", "sendAt": "2026-11-23T12:00:00Z"}, "sendAt", "messagingServiceSid"),
        ({"to": "+15558675310", "body": "x", "validityPeriod": 0}, "validityPeriod", "1 to 36000"),
        ({"to": "+15558675310", "body": "x", "validityPeriod": 36001}, "validityPeriod", "1 to 36000"),
        ({"to": "+15558675310", "body": "x", "validityPeriod": "60"}, "validityPeriod", "integer"),
        ({"to": "+15558675310", "body": "x", "shortenUrls": "yes"}, "shortenUrls", "true or false"),
        ({"to": "+15558675310", "body": "x", "idempotencyKey": ""}, "idempotencyKey", "1 to 255"),
        ({"to": "+15558675310", "body": "x", "taskToken": 42}, "taskToken", "string"),
        ({"to": "+15558675310", "body": "x", "bodyy": "typo"}, "bodyy", "not a known field"),
    ],
)
def test_each_rule(payload: dict[str, Any], field: str, fragment: str) -> None:
    found = problems(payload)
    assert field in found, found
    assert fragment in found[field]


def test_no_sender_and_no_default() -> None:
    assert "from" in problems({"to": "+15558675310", "body": "Hi"}, NO_DEFAULTS)


def test_body_must_be_an_object() -> None:
    assert problems(["+15558675310"]) == {"(body)": "must be a JSON object, not array"}


def test_every_problem_is_listed_at_once() -> None:
    found = problems(
        {
            "to": 12345,
            "from": "!!",
            "body": "x" * 1601,
            "mediaUrl": [f"https://e.com/{n}" for n in range(11)],
            "validityPeriod": -1,
            "colour": "blue",
        }
    )
    assert set(found) == {"to", "from", "body", "mediaUrl", "validityPeriod", "colour"}


def test_channel_addresses_and_sender_kinds() -> None:
    for sender in ("+15005550006", "12345", "ACME Corp", "whatsapp:+15005550006"):
        parse_send_request({"to": "whatsapp:+15558675310", "from": sender, "body": "Hi"}, SETTINGS)
    assert "from" in problems({"to": "+15558675310", "from": "TWELVE CHARS", "body": "Hi"})
