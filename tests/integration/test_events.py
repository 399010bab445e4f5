"""Every file in events/ runs through its function's handler (the same files `sam local invoke` uses)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from werkzeug import Request, Response

from tests.support import EVENTS, is_api_event, load_handler, twilio_message

FILES = sorted(str(p.relative_to(EVENTS)) for p in EVENTS.glob("*/*.json"))


def fake_twilio(request: Request) -> Response:
    """Answers like Twilio for any call the sample events make."""
    if request.method == "DELETE":
        return Response("", 204)
    if request.path.endswith("/Messages.json") and request.method == "POST":
        return Response(json.dumps(twilio_message(to=request.form["To"])), 201, content_type="application/json")
    if request.path.endswith(".json") and "/Messages/" in request.path:
        return Response(json.dumps(twilio_message()), 200, content_type="application/json")
    return Response(
        json.dumps({"code": 20404, "message": "not in this fake", "status": 404}), 404, content_type="application/json"
    )


CALLS_TWILIO = ("send_message", "get_message")
# list and raw samples are run against Prism (tests/contract), the webhook's by test_webhook.py.
RUN_HERE = (*CALLS_TWILIO, "opt_outs", "reconcile_statuses")


@pytest.mark.parametrize("name", [f for f in FILES if f.split("/")[0] in RUN_HERE])
def test_event_file_runs_through_its_handler(
    aws: Any, state_table: str, twilio: Any, context: Any, monkeypatch: Any, name: str
) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://sms.example.com")
    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    twilio.expect_request(re.compile(".*")).respond_with_handler(fake_twilio)
    function = name.split("/")[0]
    if "events" in name:  # the delivery record of the sample message: written by a send
        load_handler("send_message").lambda_handler(
            json.loads((EVENTS / "send_message/step_functions.json").read_text()), context
        )
    event = json.loads((EVENTS / name).read_text())
    answer = load_handler(function).lambda_handler(event, context)
    if is_api_event(event):
        assert 200 <= answer["statusCode"] < 300, answer
    elif "Records" in event:  # an SQS batch (the send queue): every record done, none to deliver again
        assert answer == {"batchItemFailures": []}
    else:
        assert isinstance(answer, dict) and "error" not in answer
    if function in CALLS_TWILIO:
        assert twilio.log, "the event reached Twilio"
