"""A campaign's recipients one by one: their own content, or why they are skipped; a campaign's
request parsed whole; segments as Twilio bills them; recipients files read as CSV or JSON Lines."""

from __future__ import annotations

import io
from typing import Any

import pytest

from twilio_messaging.campaign_files import _rows, parse_s3_uri
from twilio_messaging.campaign_recipients import Personal, Personalizer, Skip, Tally
from twilio_messaging.campaign_request import parse_campaign_request
from twilio_messaging.errors import ValidationError
from twilio_messaging.segments import encode
from twilio_messaging.settings import Settings

SETTINGS = Settings(twilio_secret_id="x", default_from="+15005550006", campaign_bucket="campaigns")


def personal(message: dict[str, Any], row: Any) -> Personal | Skip:
    return Personalizer(message).personalize(row)


def test_variables_fill_the_body_and_a_templates_content_variables() -> None:
    filled = personal(
        {"body": "Hi {{ first }}, {{first}}! Order {{order.id}}"},
        {"to": "+15550100001", "first": "Ada", "order.id": 42},
    )
    assert isinstance(filled, Personal) and filled.body == "Hi Ada, Ada! Order 42"
    template = {"contentSid": "HX" + "0" * 32, "contentVariables": {"1": "default", "2": "kept"}}
    content = personal(template, {"to": "+15550100001", "1": "Ada"})
    assert isinstance(content, Personal) and content.content_variables == {"1": "Ada", "2": "kept"}
    assert content.entry() == {"to": "+15550100001", "contentVariables": {"1": "Ada", "2": "kept"}}
    plain = personal({"body": "No placeholders"}, "+15550100001")
    assert isinstance(plain, Personal) and plain.entry() == {"to": "+15550100001"}  # the message's own body


@pytest.mark.parametrize(
    ("row", "code"),
    [
        ("15550100001", "invalid_recipient"),
        ({"name": "Ada"}, "invalid_recipient"),
        (42, "invalid_recipient"),
        (None, "invalid_recipient"),
        ({"to": "+15550100001"}, "missing_variable"),
        ({"to": "+15550100001", "name": ["Ada"]}, "invalid_variable"),
        ({"to": "+15550100001", "name": "\ud800"}, "invalid_variable"),
        ({"to": "+15550100001", "name": "é" * 1598}, "body_too_long"),
    ],
)
def test_a_recipient_that_cannot_be_sent_is_skipped_with_its_reason(row: Any, code: str) -> None:
    outcome = personal({"body": "Hi {{name}}"}, row)
    assert isinstance(outcome, Skip) and outcome.code == code and outcome.reason


def test_a_recipient_twice_is_sent_once() -> None:
    personalizer = Personalizer({"body": "Hi"})
    outcomes = [
        personalizer.personalize(row) for row in ("+15550100001", {"to": " +15550100001 "}, "whatsapp:+15550100001")
    ]
    assert [type(o).__name__ for o in outcomes] == ["Personal", "Skip", "Personal"]
    assert isinstance(outcomes[1], Skip) and outcomes[1].code == "duplicate"


def test_a_tally_counts_what_a_dry_run_shows() -> None:
    tally = Tally()
    personalizer = Personalizer({"body": "{{text}}"})
    for row in ({"to": "+15550100001", "text": "a" * 161}, {"to": "+15550100002", "text": "€" * 81}, "bad"):
        tally.add(personalizer.personalize(row))
    shown = tally.as_dict()
    assert (shown["total"], shown["sendable"], shown["skipped"], shown["segments"]) == (3, 2, 1, 4)
    assert shown["encodings"] == {"GSM-7": 2} and shown["segmentsPerMessage"] == {"2": 2}
    assert shown["skippedRecipients"] == [
        {"to": "bad", "skipped": "invalid_recipient", "reason": shown["skippedRecipients"][0]["reason"]}
    ]


@pytest.mark.parametrize(
    ("body", "encoding", "segments"),
    [
        ("", "GSM-7", 1),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("[" * 80, "GSM-7", 1),  # an extension character counts twice
        ("[" * 81, "GSM-7", 2),
        ("é" * 160, "GSM-7", 1),  # é is in GSM-7's basic set
        ("ê" * 70, "UCS-2", 1),
        ("ê" * 71, "UCS-2", 2),
        ("😀" * 35, "UCS-2", 1),  # two UTF-16 units each
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_segments_as_twilio_bills_them(body: str, encoding: str, segments: int) -> None:
    assert (encode(body).encoding, encode(body).segments) == (encoding, segments)


def test_a_campaign_request_is_parsed_whole() -> None:
    request = parse_campaign_request(
        {"recipients": ["+15550100001"], "message": {"body": "Hi"}, "name": "Launch", "maxSendsPerSecond": 0.5},
        SETTINGS,
    )
    assert (request.name, request.max_sends_per_second, request.dry_run) == ("Launch", 0.5, False)
    with pytest.raises(ValidationError) as raised:
        parse_campaign_request(
            {"recipientsUri": "https://campaigns/list.csv", "recipients": [], "message": {}}, SETTINGS
        )
    fields = {d["field"] for d in raised.value.details}
    assert fields == {"recipients", "message.body"}
    with pytest.raises(ValidationError) as raised:
        parse_campaign_request({"message": {"body": "Hi", "taskToken": "t", "idempotencyKey": "k"}}, SETTINGS)
    assert {d["field"] for d in raised.value.details} == {"recipients", "message.taskToken", "message.idempotencyKey"}


def test_the_fingerprint_tells_a_repeat_from_another_campaign() -> None:
    first = parse_campaign_request({"recipients": ["+15550100001"], "message": {"body": "Hi"}}, SETTINGS)
    again = parse_campaign_request({"recipients": ["+15550100001"], "message": {"body": "Hi"}}, SETTINGS)
    other = parse_campaign_request({"recipients": ["+15550100002"], "message": {"body": "Hi"}}, SETTINGS)
    assert first.fingerprint() == again.fingerprint() != other.fingerprint()


def test_recipients_files_as_csv_and_json_lines() -> None:
    csv_rows = list(
        _rows("list.txt", io.StringIO('To,first name,city\n+15550100001,Ada,"London, UK"\n\n+15550100002,,Paris\n'))
    )
    assert csv_rows == [
        {"to": "+15550100001", "first name": "Ada", "city": "London, UK"},
        {"to": "+15550100002", "city": "Paris"},  # an empty cell is no value
    ]
    lines = list(_rows("list.ndjson", io.StringIO('{"to": "+15550100001"}\n[1]\nnot json\n')))
    assert lines == [{"to": "+15550100001"}, [1], None]
    sniffed = list(_rows("export", io.StringIO('{"to": "+15550100001", "n": 1}\n')))
    assert sniffed == [{"to": "+15550100001", "n": 1}]
    assert parse_s3_uri("s3://bucket/a/b.csv") == ("bucket", "a/b.csv")
    assert parse_s3_uri("s3://bucket/") is None and parse_s3_uri("https://bucket/a.csv") is None
    assert parse_s3_uri("s3://bucket/uploads/a?b#c.csv") == ("bucket", "uploads/a?b#c.csv")  # a key as it is
    # The fuzz test's 500: urlsplit raised on a bracket ("Invalid IPv6 URL").
    for bad in ("s3://\U000263bfTq\x89]\xed\xd7", "s3://[bucket]/a.csv", "s3://Bucket/a.csv", "s3:///a.csv"):
        assert parse_s3_uri(bad) is None, bad
