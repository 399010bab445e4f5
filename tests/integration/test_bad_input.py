"""Bad input over HTTP: always 400 with every problem listed, never 500, and no call to Twilio."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import api_event, load_handler

BASE = {"to": "+15558675310", "body": "Hi"}


def bad(**changes: Any) -> dict[str, Any]:
    return api_event("send_message/api_gateway.json", **changes)


CASES = {
    "non-JSON body": (bad(raw_body="to=+15558675310&body=Hi"), {"(body)"}),
    "wrong content type": (bad(headers={"Content-Type": "text/plain"}), {"Content-Type"}),
    "oversized body": (bad(raw_body=json.dumps({**BASE, "body": "x" * 300_000})), {"(body)"}),
    "body of 1601 characters": (bad(body={**BASE, "body": "x" * 1601}), {"body"}),
    "11 media URLs": (
        bad(body={"to": "+15558675310", "mediaUrl": [f"https://e.com/{n}.png" for n in range(11)]}),
        {"mediaUrl"},
    ),
    "unknown field": (bad(body={**BASE, "priority": "high"}), {"priority"}),
    "to as a number": (bad(body={**BASE, "to": 15558675310}), {"to"}),
    "empty to array": (bad(body={**BASE, "to": []}), {"to"}),
    "bad messaging service sid": (bad(body={**BASE, "messagingServiceSid": "MGnope"}), {"messagingServiceSid"}),
    "JSON that is not an object": (bad(raw_body='["+15558675310"]'), {"(body)"}),
    "several problems at once": (
        bad(body={"to": [], "body": "x" * 1601, "mediaUrl": ["ftp://x"], "validityPeriod": 0, "colour": "red"}),
        {"to", "body", "mediaUrl[0]", "validityPeriod", "colour"},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_send_is_400_listing_every_problem(aws: Any, twilio: Any, context: Any, case: str) -> None:
    event, fields = CASES[case]
    answer = load_handler("send_message").lambda_handler(event, context)
    assert answer["statusCode"] == 400, answer
    error = json.loads(answer["body"])["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert {d["field"] for d in error["details"]} == fields
    assert twilio.log == []


def test_bad_sid_over_http(aws: Any, twilio: Any, context: Any) -> None:
    event = api_event("get_message/api_gateway.json", pathParameters={"sid": "SMnot-a-sid"})
    answer = load_handler("get_message").lambda_handler(event, context)
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["error"]["details"] == [
        {"field": "sid", "problem": "must match ^(SM|MM)[0-9a-f]{32}$"}
    ]
    assert twilio.log == []
