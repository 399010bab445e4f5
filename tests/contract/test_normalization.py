"""Twilio's answers, as its OpenAPI description's examples give them (served by Prism), normalize
into our models without loss: every field of the Message, phone number and caller ID models is
the example's value, converted only as docs/api.md says (camelCase, integers, ISO 8601)."""

from __future__ import annotations

from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests

from local.prism import EXAMPLE_ACCOUNT_SID
from tests.support import MESSAGE_SID, load_handler

pytestmark = pytest.mark.contract
ACCOUNT = f"/2010-04-01/Accounts/{EXAMPLE_ACCOUNT_SID}"


def twilio(prism_url: str, path: str, **params: Any) -> dict[str, Any]:
    """What Prism answers for a path, fetched directly (the examples are static)."""
    answer = requests.get(prism_url + ACCOUNT + path, params=params, auth=(EXAMPLE_ACCOUNT_SID, "token"), timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def iso(rfc2822: str | None) -> str | None:
    if rfc2822 is None:
        return None
    return parsedate_to_datetime(rfc2822).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expected_message(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "sid": resource["sid"],
        "accountSid": resource["account_sid"],
        "messagingServiceSid": resource["messaging_service_sid"],
        "from": resource["from"],
        "to": resource["to"],
        "body": resource["body"],
        "status": resource["status"],
        "direction": resource["direction"],
        "numSegments": int(resource["num_segments"]),
        "numMedia": int(resource["num_media"]),
        "price": resource["price"],
        "priceUnit": resource["price_unit"],
        "errorCode": None if resource["error_code"] is None else int(resource["error_code"]),
        "errorMessage": resource["error_message"],
        "dateCreated": iso(resource["date_created"]),
        "dateSent": iso(resource["date_sent"]),
        "dateUpdated": iso(resource["date_updated"]),
        "apiVersion": resource["api_version"],
        "uri": resource["uri"],
    }


def test_fetched_message(twilio_contract: str, context: Any) -> None:
    resource = twilio(twilio_contract, f"/Messages/{MESSAGE_SID}.json")
    message = load_handler("get_message").lambda_handler({"sid": MESSAGE_SID}, context)
    assert message == expected_message(resource)


def test_sent_message(twilio_contract: str, context: Any) -> None:
    created = requests.post(
        twilio_contract + ACCOUNT + "/Messages.json",
        data={"To": "+15558675310", "From": "+15005550006", "Body": "x"},
        auth=(EXAMPLE_ACCOUNT_SID, "token"),
        timeout=10,
    ).json()
    message = load_handler("send_message").lambda_handler({"to": "+15558675310", "body": "Hello"}, context)
    assert message == expected_message(created)


def test_listed_messages(twilio_contract: str, context: Any) -> None:
    page = twilio(twilio_contract, "/Messages.json", PageSize=2)
    result = load_handler("list_messages").lambda_handler({"resource": "messages", "pageSize": 2, "limit": 2}, context)
    assert result["messages"] == [expected_message(m) for m in page["messages"]]


def test_phone_numbers(twilio_contract: str, context: Any) -> None:
    page = twilio(twilio_contract, "/IncomingPhoneNumbers.json", PageSize=5)
    result = load_handler("list_messages").lambda_handler({"resource": "phoneNumbers", "pageSize": 5}, context)
    assert result["phoneNumbers"] == [
        {
            "sid": n["sid"],
            "phoneNumber": n["phone_number"],
            "friendlyName": n["friendly_name"],
            "capabilities": {k: n["capabilities"][k] for k in ("sms", "mms", "voice")},
        }
        for n in page["incoming_phone_numbers"]
    ]


def test_caller_ids(twilio_contract: str, context: Any) -> None:
    page = twilio(twilio_contract, "/OutgoingCallerIds.json", PageSize=5)
    result = load_handler("list_messages").lambda_handler({"resource": "callerIds", "pageSize": 5}, context)
    expected = [
        {"sid": c["sid"], "phoneNumber": c["phone_number"], "friendlyName": c["friendly_name"]}
        for c in page["outgoing_caller_ids"]
    ]
    assert result["callerIds"] == expected
    assert result["phoneNumbers"] == ",".join(c["phoneNumber"] for c in expected)
