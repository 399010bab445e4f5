"""Opt-outs honoured before Twilio is called: inbound STOP and START through the webhook, 21610,
30005 and 30006, and suppressions by hand (the opt_outs function), for single and batch sends
over HTTP, direct invocation and EventBridge. A suppressed recipient costs no Twilio call."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from werkzeug import Response

from tests.integration.test_delivery_state import MESSAGES, Bus, callback, sent
from tests.support import LambdaContext, api_event, load_event, load_handler, signed_webhook_event, twilio_message

SERVICE = "MG" + "0" * 32  # the messaging service of the sample inbound message
OUR_NUMBER = "+15005550006"  # DefaultFrom, the sample inbound message's To
PHONE = "+15558675310"


@pytest.fixture
def bus(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Bus:
    from tests.integration.test_delivery_state import PUBLIC_BASE_URL

    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    return Bus()


def inbound(body: str, sender: str = PHONE, **changes: str | None) -> int:
    """An inbound message to our number, through the signed webhook."""
    event = signed_webhook_event(
        "webhook/inbound_message.json",
        message_sid="SM" + uuid.uuid4().hex,
        changes={"Body": body, "From": sender, **changes},
    )
    return int(load_handler("webhook").lambda_handler(event, LambdaContext())["statusCode"])


def send_direct(to: str | list[str] = PHONE, **fields: Any) -> Any:
    """A direct invoke of the send function; the error it raises, if any."""
    try:
        return load_handler("send_message").lambda_handler({"to": to, "body": "Hi", **fields}, LambdaContext())
    except Exception as error:
        return error


def posts(twilio: Any) -> int:
    return sum(1 for request, _ in twilio.log if request.method == "POST")


def opt_outs(payload: dict[str, Any]) -> Any:
    return load_handler("opt_outs").lambda_handler(payload, LambdaContext())


def test_stop_suppresses_the_number_it_was_sent_to_and_start_lifts_it(bus: Bus, twilio: Any) -> None:
    assert inbound("  stop ", MessagingServiceSid=None) == 200  # whole message, trimmed, any case
    published = {e["detail-type"]: e["detail"] for e in bus.published()}
    assert published["Message Received"]["body"] == "  stop "
    opted = published["Recipient Opted Out"]
    assert (opted["recipient"], opted["scope"], opted["source"]) == (PHONE, OUR_NUMBER, "inbound:STOP")

    refused = send_direct()
    assert type(refused).__name__ == "RecipientSuppressed"
    assert json.loads(str(refused))["code"] == "RECIPIENT_SUPPRESSED"
    assert posts(twilio) == 0  # no Twilio call

    assert inbound("START", MessagingServiceSid=None) == 200
    assert [e["detail-type"] for e in bus.published()] == ["Message Received", "Recipient Opted In"]
    twilio.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(twilio_message(), status=201)
    assert send_direct()["sid"]


def test_an_opt_out_through_a_messaging_service_is_that_services(bus: Bus, twilio: Any) -> None:
    assert inbound("STOP") == 200  # the sample came through SERVICE
    assert type(send_direct(messagingServiceSid=SERVICE)).__name__ == "RecipientSuppressed"
    twilio.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(twilio_message(), status=201)
    assert send_direct()["sid"]  # our number alone, no service: not suppressed


@pytest.mark.parametrize(
    ("body", "verdict", "suppressed"),
    [
        ("please stop", None, False),
        ("STOPALL", None, True),
        ("Unsubscribe", None, True),
        ("stop it", "STOP", True),  # Twilio's Advanced Opt-Out says so
        ("HELP", "HELP", False),
    ],
)
def test_what_counts_as_an_opt_out(bus: Bus, twilio: Any, body: str, verdict: str | None, suppressed: bool) -> None:
    assert inbound(body, MessagingServiceSid=None, OptOutType=verdict) == 200
    twilio.expect_request(MESSAGES, method="POST").respond_with_json(twilio_message(), status=201)
    outcome = send_direct()
    assert (type(outcome).__name__ == "RecipientSuppressed") is suppressed


def test_a_whatsapp_stop_does_not_stop_sms(bus: Bus, twilio: Any) -> None:
    assert inbound("STOP", sender="whatsapp:" + PHONE, To="whatsapp:" + OUR_NUMBER, MessagingServiceSid=None) == 200
    refused = send_direct(to="whatsapp:" + PHONE, **{"from": "whatsapp:" + OUR_NUMBER})
    assert type(refused).__name__ == "RecipientSuppressed"
    twilio.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(twilio_message(), status=201)
    assert send_direct()["sid"]


def test_21610_suppresses_the_pair_so_the_next_send_costs_no_call(bus: Bus, twilio: Any) -> None:
    twilio.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}, status=400
    )
    rejected = send_direct()
    assert json.loads(str(rejected))["twilioCode"] == 21610
    again = send_direct()
    assert type(again).__name__ == "RecipientSuppressed"
    assert posts(twilio) == 1
    [entry] = opt_outs({"action": "get", "number": PHONE})["optOuts"]
    assert (entry["scope"], entry["source"]) == (OUR_NUMBER, "twilio_error:21610")


@pytest.mark.parametrize(("code", "suppressed"), [("30005", True), ("30006", True), ("30003", False)])
def test_a_number_that_does_not_work_is_suppressed_for_every_sender_for_30_days(
    bus: Bus, twilio: Any, code: str, suppressed: bool
) -> None:
    sid = sent(twilio)
    assert callback(sid, "undelivered", code) == 200
    entries = opt_outs({"action": "get", "number": PHONE})["optOuts"]
    assert bool(entries) is suppressed
    if suppressed:
        [entry] = entries
        assert (entry["scope"], entry["reason"], entry["source"]) == ("*", "undeliverable", f"twilio_error:{code}")
        assert entry["until"] > entry["since"]
        outcome = send_direct(messagingServiceSid=SERVICE)
        assert type(outcome).__name__ == "RecipientSuppressed"


def test_in_a_batch_a_suppressed_recipient_is_one_of_the_failed(bus: Bus, twilio: Any) -> None:
    opt_outs({"action": "put", "number": "+15558675311"})
    twilio.expect_request(MESSAGES, method="POST").respond_with_handler(
        lambda request: Response(
            json.dumps(twilio_message(sid="SM" + uuid.uuid4().hex, to=request.form["To"])),
            201,
            content_type="application/json",
        )
    )
    answer = send_direct(to=[PHONE, "+15558675311", "+15558675312"])
    assert [m["to"] for m in answer["messages"]] == [PHONE, "+15558675312"]
    [failed] = answer["failed"]
    assert (failed["to"], failed["error"]["code"]) == ("+15558675311", "RECIPIENT_SUPPRESSED")
    assert answer["failedNumbers"] == "+15558675311"
    assert sorted(dict(r.form)["To"] for r, _ in twilio.log) == [PHONE, "+15558675312"]


def test_over_http_a_suppressed_recipient_is_a_422(bus: Bus, twilio: Any) -> None:
    opt_outs({"action": "put", "number": PHONE, "scope": "*", "reason": "asked by phone"})
    event = api_event("send_message/api_gateway.json", body={"to": PHONE, "body": "Hi"})
    answer = load_handler("send_message").lambda_handler(event, LambdaContext())
    assert answer["statusCode"] == 422
    error = json.loads(answer["body"])["error"]
    assert error["code"] == "RECIPIENT_SUPPRESSED" and "asked by phone" in error["message"]
    assert posts(twilio) == 0


def test_an_eventbridge_send_to_a_suppressed_recipient_raises(bus: Bus, twilio: Any) -> None:
    event = load_event("send_message/eventbridge.json")
    opt_outs({"action": "put", "number": event["detail"]["to"]})
    with pytest.raises(Exception) as raised:
        load_handler("send_message").lambda_handler(event, LambdaContext())
    assert type(raised.value).__name__ == "RecipientSuppressed"
    assert posts(twilio) == 0


# --- the opt_outs function ----------------------------------------------------------------------


def test_opt_outs_over_http_put_get_delete(bus: Bus) -> None:
    handler = load_handler("opt_outs").lambda_handler
    put = handler(load_event("opt_outs/api_gateway_put.json"), LambdaContext())
    assert put["statusCode"] == 200
    [entry] = json.loads(put["body"])["optOuts"]
    assert (entry["scope"], entry["reason"]) == ("*", "asked by phone")
    assert entry["source"] == "api:arn:aws:iam::123456789012:user/workflow-bot"  # the caller's identity
    got = json.loads(handler(load_event("opt_outs/api_gateway_get.json"), LambdaContext())["body"])
    assert got == {"number": PHONE, "optOuts": [entry]}
    assert handler(load_event("opt_outs/api_gateway_delete.json"), LambdaContext())["statusCode"] == 204
    assert json.loads(handler(load_event("opt_outs/api_gateway_get.json"), LambdaContext())["body"])["optOuts"] == []


def test_opt_outs_direct_and_delete_without_a_scope_lifts_every_scope(bus: Bus) -> None:
    opt_outs({"action": "put", "number": PHONE, "scope": OUR_NUMBER})
    opt_outs({"action": "put", "number": PHONE, "scope": SERVICE})
    assert {e["scope"] for e in opt_outs({"number": PHONE})["optOuts"]} == {OUR_NUMBER, SERVICE}
    assert opt_outs({"action": "delete", "number": PHONE, "scope": SERVICE})["lifted"] == [SERVICE]
    assert opt_outs({"action": "delete", "number": PHONE})["lifted"] == [OUR_NUMBER]
    assert opt_outs({"number": PHONE})["optOuts"] == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"action": "get", "number": "555"}, "number"),
        ({"action": "erase", "number": PHONE}, "action"),
        ({"action": "put", "number": PHONE, "scope": "not a sender!"}, "scope"),
        ({"action": "put", "number": PHONE, "reason": ""}, "reason"),
        ({"action": "put", "number": PHONE, "colour": "red"}, "colour"),
    ],
)
def test_bad_opt_out_requests_are_400_naming_the_field(bus: Bus, payload: dict[str, Any], field: str) -> None:
    with pytest.raises(Exception) as raised:
        opt_outs(payload)
    assert type(raised.value).__name__ == "ValidationError"
    assert field in {d["field"] for d in json.loads(str(raised.value))["details"]}


def test_the_number_in_the_path_may_be_encoded(bus: Bus) -> None:
    event = load_event("opt_outs/api_gateway_get.json")
    event["pathParameters"] = {"number": "%2B15558675310"}
    answer = load_handler("opt_outs").lambda_handler(event, LambdaContext())
    assert json.loads(answer["body"])["number"] == PHONE
    event["pathParameters"] = {"number": "15558675310"}
    assert load_handler("opt_outs").lambda_handler(event, LambdaContext())["statusCode"] == 400
