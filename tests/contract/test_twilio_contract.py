"""Every Twilio call the functions make, checked by Prism against Twilio's OpenAPI description."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.support import EVENTS, MESSAGE_SID, api_event, is_api_event, load_event, load_handler

pytestmark = pytest.mark.contract
SERVICE = "MG0123456789abcdef0123456789abcdef"


def send(event: Any, context: Any) -> Any:
    return load_handler("send_message").lambda_handler(event, context)


def raw(payload: dict[str, Any], context: Any) -> dict[str, Any]:
    answer: dict[str, Any] = load_handler("raw_request").lambda_handler(payload, context)
    return answer


@pytest.mark.parametrize(
    "body",
    [
        {"to": "+15558675310", "body": "Plain SMS"},
        {
            "to": "+15558675310",
            "mediaUrl": ["https://demo.twilio.com/owl.png", "https://demo.twilio.com/logo.png"],
            "validityPeriod": 600,
            "sendAsMms": True,
            "shortenUrls": False,
        },
        {
            "to": "+15558675310",
            "messagingServiceSid": SERVICE,
            "body": "Scheduled",
            "sendAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86_400)),
        },
        {
            "to": "whatsapp:+15558675310",
            "from": "whatsapp:+15005550006",
            "contentSid": "HX0123456789abcdef0123456789abcdef",
            "contentVariables": {"1": "12/1"},
        },
        {"to": "+15558675310", "body": "No callback", "statusCallback": None},
    ],
    ids=["sms", "mms", "scheduled", "whatsapp-template", "no-callback"],
)
def test_each_send_variant_is_a_valid_create_message(twilio_contract: str, context: Any, body: dict[str, Any]) -> None:
    answer = send(api_event("send_message/api_gateway.json", body=body), context)
    assert answer["statusCode"] == 201, answer["body"]
    message = json.loads(answer["body"])
    assert message["sid"].startswith("SM") and message["dateCreated"].endswith("Z")
    assert isinstance(message["numSegments"], int)


def test_batch_send(twilio_contract: str, context: Any) -> None:
    answer = send(load_event("send_message/api_gateway_batch.json"), context)
    result = json.loads(answer["body"])
    assert answer["statusCode"] == 200 and len(result["messages"]) == 2 and result["failed"] == []


def test_get_and_delete_message(twilio_contract: str, context: Any) -> None:
    handler = load_handler("get_message").lambda_handler
    answer = handler(load_event("get_message/api_gateway.json"), context)
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["sid"].startswith(("SM", "MM"))
    assert handler(load_event("get_message/api_gateway_delete.json"), context)["statusCode"] == 204
    assert handler({"sid": MESSAGE_SID}, context)["accountSid"].startswith("AC")


def test_list_messages_with_every_filter(twilio_contract: str, context: Any) -> None:
    handler = load_handler("list_messages").lambda_handler
    result = handler(
        {
            "resource": "messages",
            "to": "+15558675310",
            "from": "+15005550006",
            "dateSentAfter": "2026-11-01",
            "dateSentBefore": "2026-11-20",
            "pageSize": 2,
            "limit": 2,
        },
        context,
    )
    assert result["messages"] and all(m["sid"].startswith(("SM", "MM")) for m in result["messages"])
    assert handler({"resource": "messages", "dateSent": "2026-11-02", "pageSize": 5}, context)["messages"]


def test_list_phone_numbers_and_caller_ids(twilio_contract: str, context: Any) -> None:
    handler = load_handler("list_messages").lambda_handler
    numbers = handler({"resource": "phoneNumbers", "pageSize": 5}, context)
    assert numbers["phoneNumbers"] and numbers["phoneNumbers"][0]["phoneNumber"].startswith("+")
    caller_ids = handler({"resource": "callerIds", "pageSize": 5}, context)
    assert caller_ids["callerIds"] and caller_ids["phoneNumbers"]


@pytest.mark.parametrize(
    "name",
    [
        *(f"list_messages/{p.name}" for p in sorted((EVENTS / "list_messages").glob("*.json"))),
        "raw_request/api_gateway.json",
        "raw_request/direct.json",  # direct_messaging_service.json names messaging.twilio.com: not in this spec
    ],
)
def test_event_files_make_valid_twilio_calls(twilio_contract: str, context: Any, name: str) -> None:
    function = name.split("/")[0]
    event = load_event(name)
    answer = load_handler(function).lambda_handler(event, context)
    if is_api_event(event):
        assert answer["statusCode"] == 200, answer
        answer = json.loads(answer["body"])
    if function == "raw_request":
        assert 200 <= answer["statusCode"] < 300, answer  # Twilio's (Prism's) own status
    else:
        assert "nextPageToken" in answer


def test_raw_request_reaches_twilio_with_credentials(twilio_contract: str, context: Any) -> None:
    answer = raw({"path": "/Accounts/{AccountSid}/IncomingPhoneNumbers.json", "query": {"PageSize": "5"}}, context)
    assert answer["statusCode"] == 200 and "incoming_phone_numbers" in answer["body"]


def test_prism_rejects_a_request_outside_the_contract(twilio_contract: str, context: Any) -> None:
    """The guard for every test above: Prism does refuse what Twilio's spec does not allow."""
    answer = raw(
        {"method": "POST", "path": "/Accounts/{AccountSid}/Messages.json", "data": {"Body": "no To", "Bogus": "1"}},
        context,
    )
    assert answer["statusCode"] == 422
