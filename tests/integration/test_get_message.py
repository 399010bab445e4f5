"""get_message: GET and DELETE over HTTP and direct invoke, with Twilio's answers and failures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import ACCOUNT_SID, MESSAGE_SID, api_event, load_event, load_handler, twilio_message
from twilio_messaging import errors

MESSAGE = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{MESSAGE_SID}.json"
NOT_FOUND = {
    "code": 20404,
    "message": "The requested resource was not found",
    "more_info": "https://www.twilio.com/docs/errors/20404",
    "status": 404,
}


def get(event: Any, context: Any) -> Any:
    return load_handler("get_message").lambda_handler(event, context)


def test_get_over_http_answers_the_normalized_message(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGE, method="GET").respond_with_json(
        twilio_message(status="delivered", date_sent="Thu, 30 Jul 2015 20:12:32 +0000", price="-0.00750")
    )
    answer = get(load_event("get_message/api_gateway.json"), context)
    assert answer["statusCode"] == 200
    message = json.loads(answer["body"])
    assert message["status"] == "delivered" and message["dateSent"] == "2015-07-30T20:12:32Z"
    assert message["price"] == "-0.00750"


def test_get_direct_answers_the_message_itself(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGE, method="GET").respond_with_json(twilio_message())
    assert get(load_event("get_message/direct.json"), context)["sid"] == MESSAGE_SID


def test_delete_over_http_is_204(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGE, method="DELETE").respond_with_data("", status=204)
    answer = get(load_event("get_message/api_gateway_delete.json"), context)
    assert answer["statusCode"] == 204 and answer["body"] == ""
    assert [r.method for r, _ in twilio.log] == ["DELETE"]


def test_delete_direct(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGE, method="DELETE").respond_with_data("", status=204)
    assert get({"sid": MESSAGE_SID, "method": "DELETE"}, context) == {"sid": MESSAGE_SID, "deleted": True}


def test_unknown_message_is_404_over_http_and_message_not_found_direct(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGE, method="GET").respond_with_json(NOT_FOUND, status=404)
    answer = get(load_event("get_message/api_gateway.json"), context)
    assert answer["statusCode"] == 404
    assert json.loads(answer["body"])["error"]["code"] == "MESSAGE_NOT_FOUND"
    with pytest.raises(errors.MessageNotFound):
        get(load_event("get_message/direct.json"), context)
    assert len(twilio.log) == 2  # a 404 is never repeated


def test_server_error_then_success_is_retried(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_ordered_request(MESSAGE, method="GET").respond_with_json(
        {"code": 20500, "message": "oops", "status": 500}, status=500
    )
    twilio.expect_ordered_request(MESSAGE, method="GET").respond_with_json(twilio_message())
    answer = get(load_event("get_message/api_gateway.json"), context)
    assert answer["statusCode"] == 200
    assert len(twilio.log) == 2


def test_persistent_server_errors_are_twilio_unavailable(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGE, method="GET").respond_with_json({"message": "down"}, status=503)
    with pytest.raises(errors.TwilioUnavailable):
        get(load_event("get_message/direct.json"), context)
    assert len(twilio.log) == 4  # the first call and three repeats


@pytest.mark.parametrize(
    "sid",
    [
        "SM123",
        MESSAGE_SID + "\n",
        "XX0123456789abcdef0123456789abcdef",
        "SM0123456789ABCDEF0123456789ABCDEF",
        "SM../../Accounts",
    ],
)
def test_bad_sid_is_400_without_a_twilio_call(aws: Any, twilio: Any, context: Any, sid: str) -> None:
    event = api_event("get_message/api_gateway.json", pathParameters={"sid": sid})
    answer = get(event, context)
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["error"]["details"][0]["field"] == "sid"
    with pytest.raises(errors.ValidationError):
        get({"sid": sid}, context)
    assert twilio.log == []


def test_direct_payload_problems_are_listed_together(aws: Any, twilio: Any, context: Any) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        get({"sid": "SM1", "method": "PATCH", "extra": 1}, context)
    assert {d["field"] for d in caught.value.details} == {"sid", "method", "extra"}
    assert twilio.log == []
