"""list_messages against a loopback fake of Twilio: what the fake received, and what callers get."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import pytest

from tests.support import ACCOUNT_SID, api_event, load_event, load_handler, twilio_message

MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
NUMBERS_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers.json"
CALLER_IDS_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/OutgoingCallerIds.json"


def sid(number: int) -> str:
    return f"SM{number:032x}"


def page(key: str, records: list[dict[str, Any]], next_page_uri: str | None = None) -> dict[str, Any]:
    return {key: records, "next_page_uri": next_page_uri, "page": 0, "page_size": len(records)}


def run(event: Any, context: Any) -> Any:
    return load_handler("list_messages").lambda_handler(event, context)


def received(httpserver: Any) -> list[str]:
    """Path and query of every request the fake received, query decoded."""
    return [unquote(request.full_path) for request, _ in httpserver.log]


def phone_number(sid: str, number: str, **capabilities: bool) -> dict[str, Any]:
    return {
        "sid": sid,
        "account_sid": ACCOUNT_SID,
        "phone_number": number,
        "friendly_name": f"({number[2:5]}) {number[5:8]}-{number[8:]}",
        "capabilities": {"voice": True, "sms": True, "mms": False, "fax": False, **capabilities},
    }


def caller_id(sid: str, number: str) -> dict[str, Any]:
    return {"sid": sid, "account_sid": ACCOUNT_SID, "phone_number": number, "friendly_name": "Reception"}


@pytest.fixture
def three_pages(twilio: Any) -> list[str]:
    """Nine messages over three pages of three, each page URI written the way Twilio writes it."""
    uris = [
        f"{MESSAGES_PATH}?PageSize=3",
        f"{MESSAGES_PATH}?PageSize=3&Page=1&PageToken=PASM{sid(3)[2:]}",
        f"{MESSAGES_PATH}?PageSize=3&Page=2&PageToken=PASM{sid(6)[2:]}",
    ]
    for index, uri in enumerate(uris):
        path, query = uri.split("?")
        records = [twilio_message(sid(n)) for n in range(index * 3 + 1, index * 3 + 4)]
        following = uris[index + 1] if index + 1 < len(uris) else None
        twilio.expect_request(path, method="GET", query_string=query).respond_with_json(
            page("messages", records, following)
        )
    return uris


def test_limit_cuts_the_second_page_and_the_token_continues_without_gap_or_repeat(
    aws: Any, twilio: Any, three_pages: list[str], context: Any
) -> None:
    first = run({"pageSize": 3, "limit": 5}, context)

    assert [m["sid"] for m in first["messages"]] == [sid(n) for n in range(1, 6)]
    assert first["messages"][0]["dateCreated"] == "2015-07-30T20:12:31Z"  # normalized Messages
    assert received(twilio) == three_pages[:2]  # never the third page
    assert isinstance(first["nextPageToken"], str)

    second = run({"limit": 10, "pageToken": first["nextPageToken"]}, context)

    assert [m["sid"] for m in second["messages"]] == [sid(n) for n in range(6, 10)]
    assert second["nextPageToken"] is None
    assert received(twilio) == [*three_pages[:2], *three_pages[1:]]  # continued inside page 2


def test_limit_ending_on_a_page_boundary_continues_at_the_next_page(
    aws: Any, twilio: Any, three_pages: list[str], context: Any
) -> None:
    first = run({"pageSize": 3, "limit": 3}, context)
    second = run({"pageToken": first["nextPageToken"], "limit": 3}, context)

    assert [m["sid"] for m in first["messages"] + second["messages"]] == [sid(n) for n in range(1, 7)]
    assert received(twilio) == three_pages[:2]


def test_the_pages_ending_before_the_limit_ends_the_list(
    aws: Any, twilio: Any, three_pages: list[str], context: Any
) -> None:
    answer = run({"pageSize": 3, "limit": 100}, context)

    assert len(answer["messages"]) == 9
    assert answer["nextPageToken"] is None
    assert received(twilio) == three_pages


def test_each_filter_goes_out_under_its_twilio_name(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGES_PATH, method="GET").respond_with_json(page("messages", [twilio_message()]))

    answer = run(
        {
            "to": "+15558675310",
            "from": "+15005550006",
            "dateSent": "2026-11-20",
            "dateSentAfter": "2026-11-01",
            "dateSentBefore": "2026-11-22T10:30:00+01:00",
        },
        context,
    )

    request = twilio.log[0][0]
    assert request.args.to_dict(flat=False) == {
        "To": ["+15558675310"],
        "From": ["+15005550006"],
        "DateSent": ["2026-11-20T00:00:00Z"],
        "DateSent>": ["2026-11-01T00:00:00Z"],
        "DateSent<": ["2026-11-22T09:30:00Z"],
        "PageSize": ["50"],
    }
    assert "DateSent%3E=2026-11-01T00%3A00%3A00Z" in request.query_string.decode()
    assert "DateSent%3C=" in request.query_string.decode()
    assert answer["messages"][0]["to"] == "+15558675310"


def test_a_token_keeps_its_filters_and_refuses_other_ones(aws: Any, twilio: Any, context: Any) -> None:
    query = "To=%2B15558675310&PageSize=1"
    next_uri = f"{MESSAGES_PATH}?{query}&Page=1&PageToken=PASM01"
    twilio.expect_request(MESSAGES_PATH, query_string=query).respond_with_json(
        page("messages", [twilio_message(sid(1))], next_uri)
    )
    twilio.expect_request(MESSAGES_PATH, query_string=f"{query}&Page=1&PageToken=PASM01").respond_with_json(
        page("messages", [twilio_message(sid(2))])
    )
    first = run({"to": "+15558675310", "pageSize": 1}, context)

    with pytest.raises(Exception) as raised:
        run({"to": "+15559990000", "pageToken": first["nextPageToken"]}, context)
    assert type(raised.value).__name__ == "ValidationError"
    assert received(twilio) == [f"{MESSAGES_PATH}?To=+15558675310&PageSize=1"]

    # The same filters again, or none, continue the query the token came from.
    second = run({"to": "+15558675310", "pageToken": first["nextPageToken"]}, context)
    third = run({"pageToken": first["nextPageToken"]}, context)
    assert second["messages"][0]["sid"] == third["messages"][0]["sid"] == sid(2)
    assert received(twilio)[1:] == [unquote(next_uri)] * 2


def test_phone_numbers_are_listed_with_their_capabilities(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(NUMBERS_PATH, method="GET", query_string="PageSize=50").respond_with_json(
        page(
            "incoming_phone_numbers",
            [phone_number("PN" + "1" * 32, "+15005550006", mms=True), phone_number("PN" + "2" * 32, "+15005550007")],
        )
    )

    answer = run({"resource": "phoneNumbers"}, context)

    assert answer == {
        "phoneNumbers": [
            {
                "sid": "PN" + "1" * 32,
                "phoneNumber": "+15005550006",
                "friendlyName": "(500) 555-0006",
                "capabilities": {"sms": True, "mms": True, "voice": True},
            },
            {
                "sid": "PN" + "2" * 32,
                "phoneNumber": "+15005550007",
                "friendlyName": "(500) 555-0007",
                "capabilities": {"sms": True, "mms": False, "voice": True},
            },
        ],
        "nextPageToken": None,
    }
    assert received(twilio) == [f"{NUMBERS_PATH}?PageSize=50"]


def test_caller_ids_come_with_their_numbers_joined(aws: Any, twilio: Any, context: Any) -> None:
    next_uri = f"{CALLER_IDS_PATH}?PageSize=2&Page=1&PageToken=PAPN02"
    twilio.expect_request(CALLER_IDS_PATH, query_string="PageSize=2").respond_with_json(
        page(
            "outgoing_caller_ids",
            [caller_id("PN" + "a" * 32, "+15558675310"), caller_id("PN" + "b" * 32, "+15558675311")],
            next_uri,
        )
    )

    response = run(
        api_event(
            "list_messages/api_gateway_caller_ids.json",
            queryStringParameters={"pageSize": "2"},
            multiValueQueryStringParameters={"pageSize": ["2"]},
        ),
        context,
    )

    assert response["statusCode"] == 200
    answer = json.loads(response["body"])
    assert answer["callerIds"] == [
        {"sid": "PN" + "a" * 32, "phoneNumber": "+15558675310", "friendlyName": "Reception"},
        {"sid": "PN" + "b" * 32, "phoneNumber": "+15558675311", "friendlyName": "Reception"},
    ]
    assert answer["phoneNumbers"] == "+15558675310,+15558675311"
    assert answer["nextPageToken"]  # the limit (pageSize) ended the answer, not the pages
    assert received(twilio) == [f"{CALLER_IDS_PATH}?PageSize=2"]


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ({"pageSize": ["0"]}, {"pageSize"}),
        ({"pageSize": ["1001"]}, {"pageSize"}),
        ({"dateSent": ["2026-13-01"]}, {"dateSent"}),
        ({"dateSent": ["22/11/2026"]}, {"dateSent"}),
        ({"dateSentAfter": ["2026-11-22"], "dateSentBefore": ["2026-11-01"]}, {"dateSentAfter"}),
        ({"limit": ["ten"]}, {"limit"}),
        ({"pagesize": ["10"]}, {"pagesize"}),
        ({"pageToken": ["bm90LWEtdG9rZW4"]}, {"pageToken"}),
        (
            {"pageSize": ["0"], "limit": ["x"], "dateSent": ["yesterday"], "colour": ["blue"]},
            {"pageSize", "limit", "dateSent", "colour"},
        ),
    ],
)
def test_bad_queries_answer_400_listing_every_problem_without_calling_twilio(
    aws: Any, twilio: Any, context: Any, query: dict[str, list[str]], fields: set[str]
) -> None:
    event = api_event(
        "list_messages/api_gateway.json",
        queryStringParameters={k: v[-1] for k, v in query.items()},
        multiValueQueryStringParameters=query,
    )

    response = run(event, context)

    assert response["statusCode"] == 400
    error = json.loads(response["body"])["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert {detail["field"] for detail in error["details"]} == fields
    assert twilio.log == []


def test_direct_invoke_with_bad_fields_raises_validation_error(aws: Any, twilio: Any, context: Any) -> None:
    with pytest.raises(Exception) as raised:
        run({"resource": "numbers", "pageSize": 0}, context)

    assert type(raised.value).__name__ == "ValidationError"
    details = json.loads(str(raised.value))["details"]
    assert {d["field"] for d in details} == {"resource"}
    assert twilio.log == []


@pytest.mark.parametrize(
    ("event_file", "expected_request", "key"),
    [
        (
            "api_gateway.json",
            f"{MESSAGES_PATH}?To=+15558675310&DateSent>=2026-11-01T00:00:00Z&DateSent<=2026-11-22T00:00:00Z&PageSize=20",
            "messages",
        ),
        ("api_gateway_phone_numbers.json", f"{NUMBERS_PATH}?PageSize=100", "phoneNumbers"),
        ("api_gateway_caller_ids.json", f"{CALLER_IDS_PATH}?PageSize=100", "callerIds"),
        ("direct.json", f"{MESSAGES_PATH}?From=+15005550006&DateSent=2026-11-22T00:00:00Z&PageSize=20", "messages"),
        ("direct_phone_numbers.json", f"{NUMBERS_PATH}?PageSize=100", "phoneNumbers"),
        ("direct_caller_ids.json", f"{CALLER_IDS_PATH}?PageSize=100", "callerIds"),
    ],
)
def test_each_sample_event_runs_through_the_handler(
    aws: Any, twilio: Any, context: Any, event_file: str, expected_request: str, key: str
) -> None:
    twilio.expect_request(MESSAGES_PATH).respond_with_json(page("messages", [twilio_message()]))
    twilio.expect_request(NUMBERS_PATH).respond_with_json(
        page("incoming_phone_numbers", [phone_number("PN" + "1" * 32, "+15005550006")])
    )
    twilio.expect_request(CALLER_IDS_PATH).respond_with_json(
        page("outgoing_caller_ids", [caller_id("PN" + "a" * 32, "+15558675310")])
    )
    event = load_event(f"list_messages/{event_file}")

    response = run(event, context)

    answer = json.loads(response["body"]) if event_file.startswith("api_gateway") else response
    if event_file.startswith("api_gateway"):
        assert response["statusCode"] == 200
    assert len(answer[key]) == 1
    assert answer["nextPageToken"] is None
    assert received(twilio) == [expected_request]
